// Entry point: picks the page from the path and draws it. Pages are
// client-rendered so that the shell carries no user data and ClerkJS can
// refresh the session before the first API call.

import {config, signOut} from './api.js';
import {h, show} from './dom.js';
import {home} from './home.js';
import {prediction} from './prediction.js';

// Content-Security-Policy violations, kept for diagnosis (the browser
// tests assert there are none).
window.rwCspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.rwCspViolations.push(`${event.violatedDirective}: ${event.blockedURI || event.sample}`);
});

function account() {
  const nav = document.getElementById('account');
  const local = config.sign_in.kind === 'local' && config.sign_in.sign_out_url;
  if (local || config.sign_in.kind === 'clerk') {
    nav.replaceChildren(h('button', {type: 'button', class: 'link', id: 'sign-out', onclick: signOut}, 'Sign out'));
  }
}

async function route() {
  const path = window.location.pathname;
  const match = path.match(/^\/predictions\/([^/]+)$/);
  if (path === '/') return home();
  if (match) return prediction(decodeURIComponent(match[1]));
  return show('Not found', h('h1', {}, 'Page not found'), h('p', {}, h('a', {href: '/'}, 'Go to your uploads')));
}

// "Sign out" only once the API has answered as a signed-in user: a page
// that is about to be sent to sign in shows no account controls.
route()
  .then(() => {
    account();
    document.body.setAttribute('data-ready', 'true');
  })
  .catch((error) => {
    show('Something went wrong',
      h('h1', {}, 'Something went wrong'),
      h('p', {role: 'alert', class: 'error'}, error.message),
      h('p', {}, h('a', {href: window.location.pathname}, 'Try again')));
  });
