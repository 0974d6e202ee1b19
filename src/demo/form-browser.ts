/**
 * Completes the built-in IdP's device-login pages without a person: a cookie jar, manual
 * redirects, and "submit the page's form". `dbgov demo` uses it to log the demo developer in;
 * tests use it as the browser. No JavaScript: auto-submitting forms are submitted the way
 * their <noscript> fallback would be.
 */
export interface BrowserResult {
  status: number;
  url: string;
  html: string;
}

export class FormBrowser {
  private readonly cookies = new Map<string, string>();

  private remember(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()) || attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<BrowserResult> {
    let current = url;
    let method = init.method ?? 'GET';
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(current, {
        method,
        redirect: 'manual',
        headers: {
          cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      });
      this.remember(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        current = new URL(location, current).toString();
        method = 'GET';
        body = undefined;
        continue;
      }
      return { status: res.status, url: current, html: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits the first form on the page with its hidden inputs plus `fill`. */
  async submitForm(page: BrowserResult, fill: Record<string, string> = {}): Promise<BrowserResult> {
    const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(page.html);
    if (!form) throw new Error(`no form on ${page.url} (status ${page.status}): ${page.html.slice(0, 300)}`);
    const action = /action="([^"]*)"/i.exec(form[1])?.[1] ?? page.url;
    const fields: Record<string, string> = {};
    for (const input of form[2].matchAll(/<input\b([^>]*)>/gi)) {
      const name = /name="([^"]*)"/i.exec(input[1])?.[1];
      const value = /value="([^"]*)"/i.exec(input[1])?.[1] ?? '';
      if (name) fields[name] = decodeEntities(value);
    }
    return this.request(new URL(decodeEntities(action), page.url).toString(), { method: 'POST', form: { ...fields, ...fill } });
  }
}

function decodeEntities(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|#x2F|#x27);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x2F': '/', '#x27': "'" })[e] as string);
}

/** Drives a device login approval the way a person would in a browser. */
export async function approveDeviceLogin(verificationUriComplete: string, email: string, password: string): Promise<BrowserResult> {
  const browser = new FormBrowser();
  let page = await browser.request(verificationUriComplete);
  // Auto-submitting form_post page, then the "check the code" confirmation page.
  page = await browser.submitForm(page);
  page = await browser.submitForm(page);
  // Now at the login page.
  return browser.submitForm(page, { email, password });
}
