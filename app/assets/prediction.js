// A prediction: its state while queued or running, its error when failed,
// and when completed the summary the worker stored (figures, histogram,
// factors, the customers most at risk) and the download.

import {ApiError, config, getJson} from './api.js';
import {badge, count, h, pct, show, when} from './dom.js';

const POLL_MS = 2000;
const LEVELS = ['low', 'medium', 'high'];
const FACTORS_SHOWN = 10;

export async function prediction(id) {
  let current;
  try {
    current = await getJson(`/api/predictions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return notFound();
    throw error;
  }
  if (current.status === 'queued' || current.status === 'running') {
    waiting(current);
    setTimeout(() => prediction(id), POLL_MS);
    return;
  }
  if (current.status === 'failed') return failed(current);
  const summary = await getJson(`/api/predictions/${encodeURIComponent(id)}/summary`);
  completed(current, summary);
}

function back() {
  return h('p', {}, h('a', {href: '/'}, '← All uploads'));
}

function notFound() {
  show('Prediction not found',
    back(),
    h('h1', {id: 'not-found'}, 'Prediction not found'),
    h('p', {}, 'There is no prediction at this address in your account. ' +
      'It may belong to another account, or the link may be incomplete.'));
}

function waiting(p) {
  show('Scoring…',
    back(),
    h('h1', {}, 'Scoring your customers'),
    h('p', {role: 'status', id: 'prediction-status'},
      badge(p.status), ' ',
      p.status === 'queued'
        ? `${count(p.rows)} customers are waiting for a worker.`
        : `${count(p.rows)} customers are being scored.`,
      ' This page updates by itself.'),
    h('progress', {'aria-label': 'Scoring progress'}));
}

function failed(p) {
  show('Prediction failed',
    back(),
    h('h1', {}, 'This prediction failed'),
    h('div', {role: 'alert', class: 'error', id: 'prediction-error'},
      h('p', {}, p.error ?? 'The worker could not score this file.'),
      h('p', {}, h('a', {href: '/'}, 'Upload the file again'), ' to retry, or fix it first if the error names a row.')));
}

function completed(p, s) {
  show('Churn risk',
    back(),
    h('h1', {}, 'Churn risk'),
    h('p', {class: 'muted'}, `${count(s.customers)} customers scored ${when(p.completed_at)}.`),
    h('p', {}, h('a', {class: 'button', id: 'download', download: true,
      href: `/api/predictions/${encodeURIComponent(p.id)}/download`}, 'Download the scored CSV')),
    s.customers === 0
      ? h('p', {class: 'empty', id: 'empty-prediction'},
        'The file had no customers to score, so there is nothing to chart.')
      : [figures(s), histogram(s), factors(s), topCustomers(s)]);
}

function figures(s) {
  const figure = (label, value, cls) =>
    h('div', {class: `figure ${cls ?? ''}`}, h('dt', {}, label), h('dd', {}, value));
  return h('section', {'aria-labelledby': 'figures-heading'},
    h('h2', {id: 'figures-heading', class: 'visually-hidden'}, 'Summary'),
    h('dl', {class: 'figures', id: 'figures'},
      figure('Customers', count(s.customers)),
      figure('High risk', count(s.levels.high), 'level-high'),
      figure('Medium risk', count(s.levels.medium), 'level-medium'),
      figure('Low risk', count(s.levels.low), 'level-low'),
      figure('Mean churn probability', pct(s.mean_probability))));
}

const chartSize = (name) => config.charts.find((c) => c.name === name);

/** The level a histogram bin falls in, by its midpoint. */
function binLevel(s, index) {
  const middle = (index + 0.5) * s.histogram.bin_width;
  if (middle >= s.thresholds.high) return 'high';
  return middle >= s.thresholds.medium ? 'medium' : 'low';
}

function histogram(s) {
  const {bin_width: width, counts} = s.histogram;
  const range = (i) => `${pct(i * width)}–${pct((i + 1) * width)}`;
  const chart = h('div', {id: 'histogram', class: 'chart', role: 'img',
    'aria-label': 'Histogram of churn probability; the numbers are in the table below'});
  const rows = counts.map((n, i) => h('tr', {},
    h('th', {scope: 'row'}, range(i)), h('td', {class: 'num'}, count(n)), h('td', {}, binLevel(s, i))));
  queueMicrotask(() => drawHistogram(chart, s));
  return h('section', {'aria-labelledby': 'histogram-heading'},
    h('h2', {id: 'histogram-heading'}, 'Churn probability'),
    h('p', {class: 'muted'},
      `Customers per ${pct(width)} band. Medium risk from ${pct(s.thresholds.medium)}, ` +
      `high risk from ${pct(s.thresholds.high)} (dashed lines).`),
    legend(LEVELS.map((l) => [l, `${l} risk`])),
    chart,
    h('details', {}, h('summary', {}, 'Histogram as a table'),
      h('table', {class: 'data', id: 'histogram-table'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Churn probability'),
          h('th', {scope: 'col', class: 'num'}, 'Customers'), h('th', {scope: 'col'}, 'Risk level'))),
        h('tbody', {}, rows))));
}

function legend(entries) {
  return h('ul', {class: 'legend'}, entries.map(([cls, text]) =>
    h('li', {}, h('span', {class: `swatch swatch-${cls}`, 'aria-hidden': 'true'}), text)));
}

function drawHistogram(element, s) {
  const {bin_width: width, counts} = s.histogram;
  // One series per level, null where a bin belongs to another level, so
  // each bin is exactly one bar, coloured by its level.
  const series = LEVELS.map((level) => ({
    name: level,
    className: `series-${level}`,
    data: counts.map((n, i) => (binLevel(s, i) === level ? n : null)),
  }));
  const size = chartSize('histogram');
  const chart = new window.Chartist.BarChart(element, {
    labels: counts.map((_, i) => (i % 4 === 0 ? pct(i * width) : '')),
    series,
  }, {
    stackBars: true,
    width: size.width,
    height: size.height,
    axisY: {onlyInteger: true},
    chartPadding: {top: 24, right: 16, bottom: 8, left: 16},
  });
  chart.on('created', ({chartRect, svg}) => {
    const step = (chartRect.x2 - chartRect.x1) / counts.length;
    for (const [name, threshold] of [['medium', s.thresholds.medium], ['high', s.thresholds.high]]) {
      const x = chartRect.x1 + (threshold / width) * step;
      svg.elem('line', {x1: x, x2: x, y1: chartRect.y1, y2: chartRect.y2}, `threshold threshold-${name}`);
      svg.elem('text', {x: x + 4, y: chartRect.y2 + 12}, 'threshold-label')
        .text(`${name} ≥ ${pct(threshold)}`);
    }
  });
}

function factors(s) {
  const shown = s.factors.slice(0, FACTORS_SHOWN);
  const chart = h('div', {id: 'factors-chart', class: 'chart', role: 'img',
    'aria-label': 'Bar chart of the factors most often among customers\' top three; the numbers are in the table below'});
  queueMicrotask(() => drawFactors(chart, shown));
  return h('section', {'aria-labelledby': 'factors-heading'},
    h('h2', {id: 'factors-heading'}, 'What drives the risk'),
    h('p', {class: 'muted'},
      `How many customers have each factor among their top three, pushing their risk up or down` +
      (s.factors.length > shown.length ? ` (the ${shown.length} most frequent of ${s.factors.length}).` : '.')),
    legend([['up', 'raises risk'], ['down', 'lowers risk']]),
    chart,
    h('details', {}, h('summary', {}, 'Factors as a table'),
      h('table', {class: 'data', id: 'factors-table'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Factor'),
          h('th', {scope: 'col', class: 'num'}, 'Raises risk'),
          h('th', {scope: 'col', class: 'num'}, 'Lowers risk'))),
        h('tbody', {}, s.factors.map((f) => h('tr', {},
          h('th', {scope: 'row'}, f.factor), h('td', {class: 'num'}, count(f.up)),
          h('td', {class: 'num'}, count(f.down))))))));
}

function drawFactors(element, shown) {
  const size = chartSize('factors');
  // Chartist draws horizontal bars bottom-up; reversed, the most frequent
  // factor is on top.
  const ordered = [...shown].reverse();
  new window.Chartist.BarChart(element, {
    labels: ordered.map((f) => f.factor),
    series: [
      {name: 'up', className: 'series-up', data: ordered.map((f) => f.up)},
      {name: 'down', className: 'series-down', data: ordered.map((f) => f.down)},
    ],
  }, {
    horizontalBars: true,
    seriesBarDistance: 10,
    width: size.width,
    height: size.height,
    axisX: {onlyInteger: true},
    axisY: {offset: 180},
    chartPadding: {top: 8, right: 24, bottom: 8, left: 8},
  });
}

const LEVEL_ORDER = {low: 0, medium: 1, high: 2};
const COLUMNS = [
  {key: 'row', label: 'Row', numeric: true, value: (c) => c.row},
  {key: 'customer_id', label: 'Customer', value: (c) => c.customer_id},
  {key: 'churn_probability', label: 'Churn probability', numeric: true, value: (c) => c.churn_probability},
  {key: 'risk_level', label: 'Risk level', value: (c) => LEVEL_ORDER[c.risk_level] ?? -1},
];

function topCustomers(s) {
  const state = {key: 'churn_probability', descending: true, query: ''};
  const body = h('tbody');
  const status = h('p', {role: 'status', id: 'top-customers-count', class: 'muted'});
  const headers = COLUMNS.map((column) => {
    const button = h('button', {type: 'button', class: 'sort'}, column.label);
    const th = h('th', {scope: 'col', class: column.numeric ? 'num' : null, 'data-key': column.key}, button);
    button.addEventListener('click', () => {
      state.descending = state.key === column.key ? !state.descending : column.numeric;
      state.key = column.key;
      render();
    });
    return th;
  });

  const render = () => {
    const query = state.query.trim().toLowerCase();
    const column = COLUMNS.find((c) => c.key === state.key);
    const rows = s.top_customers
      .filter((c) => !query || c.customer_id.toLowerCase().includes(query) ||
        c.factors.some((f) => f.toLowerCase().includes(query)))
      .sort((a, b) => {
        const [x, y] = [column.value(a), column.value(b)];
        const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
        // Ties keep file order, as the summary does.
        return (state.descending ? -order : order) || a.row - b.row;
      });
    for (const th of headers) {
      th.setAttribute('aria-sort', th.dataset.key === state.key
        ? (state.descending ? 'descending' : 'ascending') : 'none');
    }
    body.replaceChildren(...rows.map((c) => h('tr', {'data-customer-id': c.customer_id},
      h('td', {class: 'num'}, count(c.row)),
      h('th', {scope: 'row'}, c.customer_id),
      h('td', {class: 'num', 'data-probability': c.churn_probability}, pct(c.churn_probability)),
      h('td', {}, badge(c.risk_level)),
      h('td', {}, c.factors.join(', ')))));
    status.textContent = `Showing ${count(rows.length)} of the ${count(s.top_customers.length)} ` +
      `customers most at risk${query ? ` matching "${state.query.trim()}"` : ''}.`;
  };

  const search = h('input', {type: 'search', id: 'customer-search', autocomplete: 'off'});
  search.addEventListener('input', () => {
    state.query = search.value;
    render();
  });
  render();
  return h('section', {'aria-labelledby': 'top-heading'},
    h('h2', {id: 'top-heading'}, 'Customers most at risk'),
    h('p', {class: 'muted'}, `The ${count(s.top_customers.length)} highest churn probabilities` +
      (s.customers > s.top_customers.length
        ? ` of ${count(s.customers)} customers; every customer is in the download.` : '.')),
    h('div', {class: 'search'}, h('label', {for: 'customer-search'}, 'Search by customer or factor'), search),
    status,
    h('table', {class: 'data sortable', id: 'top-customers'},
      h('caption', {class: 'visually-hidden'}, 'Customers most at risk; column headers sort'),
      h('thead', {}, h('tr', {}, headers, h('th', {scope: 'col'}, 'Top factors'))),
      body));
}
