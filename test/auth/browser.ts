/** The tests' browser is the same form driver `dbgov demo` uses to log its developer in. */
export { FormBrowser as TestBrowser, approveDeviceLogin, type BrowserResult } from '../../src/demo/form-browser.js';
