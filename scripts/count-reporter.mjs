// A Node test reporter that writes one line of counts: "<passed> <failed> <skipped>".
// run-tests.mjs uses it next to the spec reporter to print one closing line for all suites.
export default async function* countReporter(source) {
  let passed = 0,
    failed = 0,
    skipped = 0
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    if (event.data.details?.type === 'suite') continue
    if (event.data.skip || event.data.todo) skipped++
    else if (event.type === 'test:pass') passed++
    else failed++
  }
  yield `${passed} ${failed} ${skipped}\n`
}
