// The JSON API, called with the `__session` cookie (the proxy verifies it
// like any token), and the way back to sign-in when it answers 401.

/** The shell's settings (`rw-config`): sign-in and chart sizes. */
export const config = JSON.parse(document.getElementById('rw-config').textContent);

/** A refused request: HTTP status, the API's `error` code and `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let clerkLoaded = null;

/**
 * ClerkJS, loaded: it refreshes `__session` (a session token lives about a
 * minute) and keeps it fresh while the tab is open.
 */
export function clerk() {
  if (config.sign_in.kind !== 'clerk') return Promise.resolve(null);
  clerkLoaded ??= new Promise((resolve, reject) => {
    const script = document.querySelector('script[data-clerk-publishable-key]');
    const start = () => window.Clerk.load().then(() => resolve(window.Clerk), reject);
    if (window.Clerk) start();
    else {
      script.addEventListener('load', start, {once: true});
      script.addEventListener('error', () => reject(new Error('ClerkJS could not be loaded')), {
        once: true,
      });
    }
  });
  return clerkLoaded;
}

/** Sends the browser to sign in, to come back to this page. Never resolves. */
export async function signIn() {
  const back = window.location.href;
  const signInConfig = config.sign_in;
  if (signInConfig.kind === 'local') {
    const url = new URL(signInConfig.url);
    url.searchParams.set('redirect_url', back);
    window.location.assign(url.toString());
  } else if (signInConfig.kind === 'clerk') {
    const instance = await clerk();
    await instance.redirectToSignIn({signInForceRedirectUrl: back});
  } else {
    throw new ApiError(
      401,
      'sign_in_not_configured',
      'You are not signed in, and this deployment has no sign-in configured ' +
        '(APP_CLERK_PUBLISHABLE_KEY or APP_SIGN_IN_URL).',
    );
  }
  return new Promise(() => {});
}

/** Signs out and comes back to the home page. */
export async function signOut() {
  const signInConfig = config.sign_in;
  if (signInConfig.kind === 'local' && signInConfig.sign_out_url) {
    const url = new URL(signInConfig.sign_out_url);
    url.searchParams.set('redirect_url', new URL('/', window.location.href).toString());
    window.location.assign(url.toString());
  } else if (signInConfig.kind === 'clerk') {
    const instance = await clerk();
    await instance.signOut({redirectUrl: '/'});
  }
}

/**
 * With Clerk, a 401 may only mean the one-minute token in the cookie
 * expired while the tab slept: ask ClerkJS for a fresh one once, then retry.
 */
async function refreshed() {
  const instance = await clerk();
  if (!instance?.session) return false;
  await instance.session.getToken({skipCache: true});
  return true;
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a gateway's page): the status says enough.
  }
  return new ApiError(
    response.status,
    body.error ?? `http_${response.status}`,
    body.message ?? `The server answered ${response.status} ${response.statusText}.`,
  );
}

/** GET `path` as JSON; 401 leads to sign-in, other refusals throw ApiError. */
export async function getJson(path) {
  await clerk();
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(path, {
      headers: {Accept: 'application/json'},
      credentials: 'same-origin',
    });
    if (response.ok) return response.json();
    if (response.status === 401) {
      if (attempt === 0 && (await refreshed())) continue;
      return signIn();
    }
    throw await errorOf(response);
  }
}

/**
 * Uploads `file` as the request body (no multipart: the API takes the raw
 * file), reporting progress as `onProgress(sentBytes, totalBytes)`.
 * Resolves with the 202 body; rejects with ApiError.
 */
export async function upload(file, onProgress) {
  await clerk();
  for (let attempt = 0; ; attempt += 1) {
    const result = await new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open('POST', `/api/uploads?filename=${encodeURIComponent(file.name)}`);
      request.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
      request.setRequestHeader('Accept', 'application/json');
      request.responseType = 'json';
      request.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      });
      request.addEventListener('load', () => resolve(request));
      request.addEventListener('error', () =>
        reject(new ApiError(0, 'network', 'The upload was interrupted: check the connection and try again.')),
      );
      request.send(file);
    });
    if (result.status === 202) return result.response;
    if (result.status === 401) {
      if (attempt === 0 && (await refreshed())) continue;
      return signIn();
    }
    const body = result.response ?? {};
    throw new ApiError(
      result.status,
      body.error ?? `http_${result.status}`,
      body.message ?? `The server answered ${result.status}.`,
    );
  }
}
