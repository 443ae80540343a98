/*
 * powerCutFs: a FUSE passthrough file system that loses every unsynced write when the power is cut.
 *
 *   powerCutFs BACKING_DIR MOUNTPOINT
 *
 * Mounts BACKING_DIR at MOUNTPOINT (in the foreground). BACKING_DIR plays the disk: what is in it survives a power
 * cut. Commands arrive as lines on standard input, each answered by a line on standard output:
 *
 *   cut   the power fails: every unsynced byte is discarded, and every operation after it fails with EIO (the
 *         machine is off) until the file system is unmounted and mounted again on the same BACKING_DIR. Answers "cut".
 *
 * "ready" is printed once the kernel has connected the mount. When standard input closes (the test that started
 * the file system has gone), the mount is detached and the process exits, so no mount outlives its owner.
 *
 * What it models. File data written with write(2) stays in this process's memory, page by page, until the file
 * is fsync'd or fdatasync'd; only then is it written to BACKING_DIR. A close does not sync, and nothing is ever
 * written back in the background: data that was never synced is lost at a cut however old it is (the most
 * pessimistic page cache). While powered, every read (read(2), pread(2), mmap(2) page faults) sees the unsynced
 * data, and a file's size includes unsynced appends.
 *
 * What it does not model. Metadata is durable at once: create, mkdir, rename, unlink, link, symlink, chmod,
 * utimens and truncate reach BACKING_DIR when they are made, so a directory fsync is a no-op. A cut never tears a
 * write: each write(2) is either wholly unsynced or, after an fsync, wholly on disk; there is no reordering of
 * synced writes and no corruption of synced data. Files are tracked by the backing file's inode, so data written
 * under one name and synced under another (after a rename, or through a hard link) is the same data.
 *
 * Build: gcc -O2 -Wall -o powerCutFs powerCutFs.c $(pkg-config --cflags --libs fuse3)
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PAGE 4096

/* The unsynced state of one backing file (identified by device and inode). */
struct file {
  dev_t dev;
  ino_t ino;
  off_t size;             /* the size the powered system sees, unsynced appends included */
  unsigned char **pages;  /* dirty pages by page number (NULL: the page is as on disk) */
  size_t npages;          /* length of pages[] */
  size_t ndirty;
  int opens;              /* open handles on the file */
  struct file *next;
};

/* An open file: the backing descriptor and the file's state. */
struct handle {
  int fd;
  struct file *f;
};

static int backing_fd = -1;
static char *mountpoint;
/* One lock for all state: operations are short, and a cut must happen between two of them, never inside one. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int powered = 1;
static struct file *files;

/* The backing path of a FUSE path, relative to backing_fd. */
static const char *rel(const char *path) {
  return path[1] == '\0' ? "." : path + 1;
}

static struct file *find_file(dev_t dev, ino_t ino) {
  for (struct file *f = files; f; f = f->next)
    if (f->dev == dev && f->ino == ino) return f;
  return NULL;
}

static void drop_pages(struct file *f) {
  for (size_t i = 0; i < f->npages; i++) free(f->pages[i]);
  free(f->pages);
  f->pages = NULL;
  f->npages = 0;
  f->ndirty = 0;
}

static void free_file(struct file *f) {
  for (struct file **p = &files; *p; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      break;
    }
  }
  drop_pages(f);
  free(f);
}

/* Forgets a file that nothing refers to any more: closed, and either clean or deleted (its data died with it). */
static void maybe_free(struct file *f, nlink_t nlink) {
  if (f->opens == 0 && (f->ndirty == 0 || nlink == 0)) free_file(f);
}

/* The state of the file open on fd, created on first use. */
static struct file *file_of_fd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return NULL;
  struct file *f = find_file(st.st_dev, st.st_ino);
  if (f) return f;
  f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->size = st.st_size;
  f->next = files;
  files = f;
  return f;
}

/* Reads the backing file's bytes at [off, off+len) into buf, zeros past its end. */
static int read_backing(int fd, unsigned char *buf, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  memset(buf + done, 0, len - done);
  return 0;
}

/* The dirty page `index` of f, read from the backing file on first touch. */
static unsigned char *dirty_page(struct file *f, int fd, size_t index, int *err) {
  if (index >= f->npages) {
    size_t n = f->npages ? f->npages : 16;
    while (n <= index) n *= 2;
    unsigned char **grown = realloc(f->pages, n * sizeof *grown);
    if (!grown) {
      *err = -ENOMEM;
      return NULL;
    }
    memset(grown + f->npages, 0, (n - f->npages) * sizeof *grown);
    f->pages = grown;
    f->npages = n;
  }
  if (!f->pages[index]) {
    unsigned char *p = malloc(PAGE);
    if (!p) {
      *err = -ENOMEM;
      return NULL;
    }
    /* bytes past the file's size read as zeros even if the backing file still holds older bytes there */
    off_t start = (off_t)index * PAGE;
    size_t valid = f->size <= start ? 0 : (size_t)(f->size - start < PAGE ? f->size - start : PAGE);
    int r = read_backing(fd, p, valid, start);
    if (r != 0) {
      free(p);
      *err = r;
      return NULL;
    }
    memset(p + valid, 0, PAGE - valid);
    f->pages[index] = p;
    f->ndirty++;
  }
  return f->pages[index];
}

/* Writes f's dirty pages to the backing file and sets its size: the file is then on "disk". */
static int flush_file(struct file *f, int fd) {
  for (size_t i = 0; i < f->npages; i++) {
    unsigned char *p = f->pages[i];
    if (!p) continue;
    off_t start = (off_t)i * PAGE;
    if (start < f->size) {
      size_t len = f->size - start < PAGE ? (size_t)(f->size - start) : PAGE;
      size_t done = 0;
      while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, start + (off_t)done);
        if (n < 0) return -errno;
        done += (size_t)n;
      }
    }
    free(p);
    f->pages[i] = NULL;
    f->ndirty--;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (st.st_size != f->size && ftruncate(fd, f->size) != 0) return -errno;
  return 0;
}

/* Applies a truncation to f's unsynced state (the backing file is truncated by the caller: metadata is durable). */
static void truncate_file(struct file *f, off_t size) {
  size_t keep = (size_t)((size + PAGE - 1) / PAGE);
  for (size_t i = keep; i < f->npages; i++) {
    if (f->pages[i]) {
      free(f->pages[i]);
      f->pages[i] = NULL;
      f->ndirty--;
    }
  }
  if (size % PAGE != 0 && (size_t)(size / PAGE) < f->npages && f->pages[size / PAGE])
    memset(f->pages[size / PAGE] + size % PAGE, 0, PAGE - size % PAGE);
  f->size = size;
}

/* The cut: every unsynced byte is gone, and the machine is off. */
static void power_cut(void) {
  pthread_mutex_lock(&lock);
  powered = 0;
  for (struct file *f = files; f; f = f->next) drop_pages(f);
  pthread_mutex_unlock(&lock);
}

#define POWERED_OR_EIO()            \
  do {                              \
    if (!powered) {                 \
      pthread_mutex_unlock(&lock);  \
      return -EIO;                  \
    }                               \
  } while (0)

static struct handle *handle_of(struct fuse_file_info *fi) {
  return (struct handle *)(uintptr_t)fi->fh;
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  /* every write must reach this process: the kernel keeps no dirty pages of its own */
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  /* operations on open files go by handle, so a deleted open file is deleted at once, as on a local disk */
  cfg->nullpath_ok = 1;
  cfg->hard_remove = 1;
  cfg->use_ino = 1;
  printf("ready\n");
  fflush(stdout);
  return NULL;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = fi ? fstat(handle_of(fi)->fd, st) : fstatat(backing_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
  r = r == 0 ? 0 : -errno;
  if (r == 0 && S_ISREG(st->st_mode)) {
    struct file *f = find_file(st->st_dev, st->st_ino);
    if (f) st->st_size = f->size;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_readlink(const char *path, char *buf, size_t size) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  ssize_t n = readlinkat(backing_fd, rel(path), buf, size - 1);
  pthread_mutex_unlock(&lock);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int fd = openat(backing_fd, rel(path), O_RDONLY | O_DIRECTORY);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  int r = d ? 0 : -errno;
  if (!d && fd >= 0) close(fd);
  fi->fh = (uint64_t)(uintptr_t)d;
  pthread_mutex_unlock(&lock);
  return r;
}

/* Lists the whole directory at once (offset 0 for every entry): libfuse serves the rest from its buffer. */
static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)path;
  (void)offset;
  (void)flags;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  DIR *d = (DIR *)(uintptr_t)fi->fh;
  rewinddir(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    struct stat st = {0};
    st.st_ino = e->d_ino;
    st.st_mode = (mode_t)DTTOIF(e->d_type);
    if (fill(buf, e->d_name, &st, 0, 0)) break;
  }
  pthread_mutex_unlock(&lock);
  return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  closedir((DIR *)(uintptr_t)fi->fh);
  return 0;
}

/* Metadata operations go straight to the backing directory: they are durable at once. */

static int pc_mkdir(const char *path, mode_t mode) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = mkdirat(backing_fd, rel(path), mode) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_rmdir(const char *path) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = unlinkat(backing_fd, rel(path), AT_REMOVEDIR) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_symlink(const char *target, const char *path) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = symlinkat(target, backing_fd, rel(path)) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_link(const char *from, const char *to) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = linkat(backing_fd, rel(from), backing_fd, rel(to), 0) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

/* Forgets the unsynced data of the file at path if removing that name deletes it (last link, not open). */
static void forget_if_last_link(const struct stat *st) {
  if (!S_ISREG(st->st_mode) || st->st_nlink != 1) return;
  struct file *f = find_file(st->st_dev, st->st_ino);
  if (f) maybe_free(f, 0);
}

static int pc_unlink(const char *path) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  struct stat st;
  int known = fstatat(backing_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0;
  int r = unlinkat(backing_fd, rel(path), 0) == 0 ? 0 : -errno;
  if (r == 0 && known) forget_if_last_link(&st);
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  struct stat src, dst;
  int replaced = fstatat(backing_fd, rel(to), &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
                 fstatat(backing_fd, rel(from), &src, AT_SYMLINK_NOFOLLOW) == 0 &&
                 !(src.st_dev == dst.st_dev && src.st_ino == dst.st_ino) && !(flags & RENAME_EXCHANGE);
  int r = renameat2(backing_fd, rel(from), backing_fd, rel(to), flags) == 0 ? 0 : -errno;
  if (r == 0 && replaced) forget_if_last_link(&dst);
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = fi ? fchmod(handle_of(fi)->fd, mode) : fchmodat(backing_fd, rel(path), mode, 0);
  r = r == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = fi ? fchown(handle_of(fi)->fd, uid, gid) : fchownat(backing_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
  r = r == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = fi ? futimens(handle_of(fi)->fd, tv) : utimensat(backing_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
  r = r == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

/* A truncation is metadata here: the backing file takes the new size at once, and unsynced pages past it go. */
static int truncate_fd(int fd, off_t size) {
  if (ftruncate(fd, size) != 0) return -errno;
  struct file *f = file_of_fd(fd);
  if (!f) return -ENOMEM;
  truncate_file(f, size);
  struct stat st;
  if (fstat(fd, &st) == 0) maybe_free(f, st.st_nlink);
  return 0;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r;
  if (fi) {
    r = truncate_fd(handle_of(fi)->fd, size);
  } else {
    int fd = openat(backing_fd, rel(path), O_WRONLY);
    r = fd < 0 ? -errno : truncate_fd(fd, size);
    if (fd >= 0) close(fd);
  }
  pthread_mutex_unlock(&lock);
  return r;
}

/* Opens the backing file read-write whatever the caller asked for, so that a sync can write it back, and without
 * O_APPEND, which would make the write-back's pwrite ignore its offset (the kernel gives appends their offset). */
static int open_file(const char *path, struct fuse_file_info *fi, int create, mode_t mode) {
  int flags = (fi->flags & ~(O_ACCMODE | O_APPEND | O_TRUNC)) | O_RDWR;
  int fd = create ? openat(backing_fd, rel(path), flags | O_CREAT, mode) : openat(backing_fd, rel(path), flags);
  if (fd < 0) return -errno;
  struct handle *h = malloc(sizeof *h);
  struct file *f = h ? file_of_fd(fd) : NULL;
  if (!f) {
    free(h);
    close(fd);
    return -ENOMEM;
  }
  if (fi->flags & O_TRUNC) {
    int r = ftruncate(fd, 0) == 0 ? 0 : -errno;
    if (r != 0) {
      free(h);
      close(fd);
      return r;
    }
    truncate_file(f, 0);
  }
  f->opens++;
  h->fd = fd;
  h->f = f;
  fi->fh = (uint64_t)(uintptr_t)h;
  return 0;
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = open_file(path, fi, 1, mode);
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = open_file(path, fi, 0, 0);
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  struct handle *h = handle_of(fi);
  struct file *f = h->f;
  if (off >= f->size) {
    pthread_mutex_unlock(&lock);
    return 0;
  }
  size_t len = f->size - off < (off_t)size ? (size_t)(f->size - off) : size;
  int r = read_backing(h->fd, (unsigned char *)buf, len, off);
  if (r == 0) {
    /* unsynced pages over what is on disk */
    for (off_t pos = off; pos < off + (off_t)len;) {
      size_t index = (size_t)(pos / PAGE);
      size_t in_page = (size_t)(pos % PAGE);
      size_t n = PAGE - in_page;
      if (n > (size_t)(off + (off_t)len - pos)) n = (size_t)(off + (off_t)len - pos);
      if (index < f->npages && f->pages[index]) memcpy(buf + (pos - off), f->pages[index] + in_page, n);
      pos += (off_t)n;
    }
  }
  pthread_mutex_unlock(&lock);
  return r == 0 ? (int)len : r;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  struct handle *h = handle_of(fi);
  struct file *f = h->f;
  for (off_t pos = off; pos < off + (off_t)size;) {
    size_t index = (size_t)(pos / PAGE);
    size_t in_page = (size_t)(pos % PAGE);
    size_t n = PAGE - in_page;
    if (n > (size_t)(off + (off_t)size - pos)) n = (size_t)(off + (off_t)size - pos);
    int err = 0;
    unsigned char *p = dirty_page(f, h->fd, index, &err);
    if (!p) {
      pthread_mutex_unlock(&lock);
      return err;
    }
    memcpy(p + in_page, buf + (pos - off), n);
    pos += (off_t)n;
    if (pos > f->size) f->size = pos;
  }
  pthread_mutex_unlock(&lock);
  return (int)size;
}

static int pc_statfs(const char *path, struct statvfs *st) {
  (void)path;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = fstatvfs(backing_fd, st) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0; /* a close does not sync */
}

/* Runs after a cut too: the processes that held files open are killed, and their handles must be let go. */
static int pc_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  struct handle *h = handle_of(fi);
  struct stat st;
  nlink_t nlink = fstat(h->fd, &st) == 0 ? st.st_nlink : 1;
  h->f->opens--;
  maybe_free(h->f, nlink);
  close(h->fd);
  free(h);
  pthread_mutex_unlock(&lock);
  return 0;
}

/* fsync and fdatasync alike put the file's data on disk (metadata already is). */
static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  (void)datasync;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  struct handle *h = handle_of(fi);
  int r = flush_file(h->f, h->fd);
  pthread_mutex_unlock(&lock);
  return r;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  (void)datasync;
  (void)fi;
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  pthread_mutex_unlock(&lock);
  return 0; /* metadata is durable at once */
}

static int pc_access(const char *path, int mask) {
  pthread_mutex_lock(&lock);
  POWERED_OR_EIO();
  int r = faccessat(backing_fd, rel(path), mask, 0) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return r;
}

static const struct fuse_operations ops = {
  .init = pc_init,
  .getattr = pc_getattr,
  .readlink = pc_readlink,
  .opendir = pc_opendir,
  .readdir = pc_readdir,
  .releasedir = pc_releasedir,
  .mkdir = pc_mkdir,
  .rmdir = pc_rmdir,
  .symlink = pc_symlink,
  .link = pc_link,
  .unlink = pc_unlink,
  .rename = pc_rename,
  .chmod = pc_chmod,
  .chown = pc_chown,
  .utimens = pc_utimens,
  .truncate = pc_truncate,
  .create = pc_create,
  .open = pc_open,
  .read = pc_read,
  .write = pc_write,
  .statfs = pc_statfs,
  .flush = pc_flush,
  .release = pc_release,
  .fsync = pc_fsync,
  .fsyncdir = pc_fsyncdir,
  .access = pc_access,
};

/* Reads commands from standard input; at its end, detaches the mount and exits. */
static void *control(void *arg) {
  (void)arg;
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strcmp(line, "cut\n") == 0) {
      power_cut();
      printf("cut\n");
    } else {
      printf("unknown command\n");
    }
    fflush(stdout);
  }
  umount2(mountpoint, MNT_DETACH);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT\n", argv[0]);
    return 2;
  }
  backing_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (backing_fd < 0) {
    perror(argv[1]);
    return 1;
  }
  /* absolute: the FUSE helper changes the working directory */
  mountpoint = realpath(argv[2], NULL);
  if (!mountpoint) {
    perror(argv[2]);
    return 1;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, control, NULL) != 0) {
    fprintf(stderr, "cannot start the control thread\n");
    return 1;
  }
  /* foreground, one thread: every operation takes the one lock anyway */
  char *fargs[] = {argv[0], mountpoint, "-f", "-s", "-o", "fsname=powerCutFs,subtype=powerCutFs", NULL};
  return fuse_main(6, fargs, &ops, NULL);
}
