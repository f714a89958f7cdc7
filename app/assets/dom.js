// Small DOM helpers. Every piece of user data goes into the page as text
// (textContent, attribute values), never as HTML.

/**
 * Creates an element: `h('a', {href: '/x', class: 'b'}, 'text', child)`.
 * Attributes whose value is null, undefined or false are left out; `on*`
 * functions become event listeners.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the main region's content and sets the document title. */
export function show(title, ...children) {
  document.title = `${title} · RetainWise`;
  const main = document.getElementById('main');
  main.replaceChildren(...children.flat().filter(Boolean));
}

const integer = new Intl.NumberFormat('en');
const percent = new Intl.NumberFormat('en', {style: 'percent', maximumFractionDigits: 1});

/** 1234567 → "1,234,567". */
export const count = (n) => (n === null || n === undefined ? '—' : integer.format(n));

/** 0.4567 → "45.7%". */
export const pct = (p) => (p === null || p === undefined ? '—' : percent.format(p));

/** An ISO 8601 or SQL timestamp in the reader's locale; the raw text if unreadable. */
export function when(text) {
  if (!text) return '—';
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
  return Number.isNaN(date.getTime())
    ? text
    : date.toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'short'});
}

/** 1536 → "1.5 KB". */
export function bytes(n) {
  const units = ['bytes', 'KB', 'MB', 'GB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A status word as a badge whose text says it (colour is only a cue). */
export function badge(status) {
  return h('span', {class: `badge badge-${status ?? 'none'}`}, status ?? 'no prediction');
}
