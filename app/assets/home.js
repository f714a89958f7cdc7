// Home: the upload area and the user's uploads, newest first, refreshing
// by itself while any prediction is queued or running.

import {ApiError, getJson, upload} from './api.js';
import {badge, bytes, count, h, show, when} from './dom.js';

const REFRESH_MS = 2000;
const ACCEPT = '.csv,.tsv,.txt,.xlsx,.gz,text/csv,text/tab-separated-values,' +
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/gzip';

export async function home() {
  const uploads = h('div', {id: 'uploads-region', 'aria-live': 'polite'},
    h('p', {role: 'status'}, 'Loading your uploads…'));
  show('Your uploads',
    h('h1', {}, 'Your uploads'),
    uploadArea(() => refresh(uploads)),
    h('section', {'aria-labelledby': 'uploads-heading'},
      h('h2', {id: 'uploads-heading'}, 'Uploads'),
      uploads));
  await refresh(uploads);
}

let timer = null;

async function refresh(region) {
  clearTimeout(timer);
  let list;
  try {
    list = await getJson('/api/uploads');
  } catch (error) {
    region.replaceChildren(h('p', {role: 'alert', class: 'error'}, error.message));
    timer = setTimeout(() => refresh(region), REFRESH_MS * 5);
    return;
  }
  region.replaceChildren(list.length === 0 ? empty() : table(list));
  if (list.some((u) => u.status === 'queued' || u.status === 'running')) {
    timer = setTimeout(() => refresh(region), REFRESH_MS);
  }
}

function empty() {
  return h('p', {class: 'empty'},
    'No uploads yet. Upload a customer file above: a CSV (Telco layout), an Excel workbook or a gzip of either.');
}

function table(list) {
  return h('table', {id: 'uploads-table', class: 'data'},
    h('caption', {class: 'visually-hidden'}, 'Your uploads, newest first'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'File'),
      h('th', {scope: 'col'}, 'Uploaded'),
      h('th', {scope: 'col', class: 'num'}, 'Customers'),
      h('th', {scope: 'col'}, 'Status'),
      h('th', {scope: 'col', class: 'num'}, 'High risk'))),
    h('tbody', {}, list.map((u) => h('tr', {'data-upload-id': u.id, 'data-status': u.status ?? ''},
      h('td', {}, u.prediction_id
        ? h('a', {href: `/predictions/${encodeURIComponent(u.prediction_id)}`}, u.filename)
        : u.filename,
      h('span', {class: 'muted'}, ` · ${bytes(u.size_bytes)}`)),
      h('td', {}, when(u.created_at)),
      h('td', {class: 'num'}, count(u.rows)),
      h('td', {class: 'status'}, badge(u.status)),
      h('td', {class: 'num'}, u.status === 'completed' ? count(u.high_risk) : '—')))));
}

function uploadArea(onUploaded) {
  const input = h('input', {type: 'file', id: 'file-input', name: 'file', accept: ACCEPT,
    'aria-describedby': 'file-help'});
  const outcome = h('div', {id: 'upload-outcome'});
  const zone = h('div', {class: 'drop-zone', id: 'drop-zone'},
    h('label', {for: 'file-input', class: 'drop-label'}, 'Choose a customer file'),
    input,
    h('p', {id: 'file-help', class: 'muted'},
      'CSV, tab-separated, Excel (.xlsx, first sheet) or gzip; or drop the file here. ' +
      'Columns are matched by name; what is ignored or filled in is reported.'));

  const start = async (file) => {
    if (!file) return;
    const progress = h('progress', {id: 'upload-progress', max: file.size || 1, value: 0,
      'aria-label': `Uploading ${file.name}`});
    const label = h('span', {id: 'upload-progress-text'}, `Uploading ${file.name}: 0%`);
    outcome.replaceChildren(h('div', {class: 'progress-row'}, progress, label));
    input.disabled = true;
    try {
      const accepted = await upload(file, (sent, total) => {
        progress.max = total;
        progress.value = sent;
        label.textContent = `Uploading ${file.name}: ${Math.floor((sent / total) * 100)}%`;
      });
      progress.value = progress.max;
      label.textContent = `Uploaded ${file.name}.`;
      outcome.replaceChildren(report(file.name, accepted));
      onUploaded();
    } catch (error) {
      outcome.replaceChildren(h('div', {role: 'alert', class: 'error', id: 'upload-error'},
        h('p', {}, h('strong', {}, `${file.name} was not accepted. `), error.message),
        error instanceof ApiError && error.code === 'bad_csv'
          ? h('p', {}, 'Nothing was stored. Fix the file and upload it again.')
          : null));
    } finally {
      input.disabled = false;
      input.value = '';
    }
  };

  input.addEventListener('change', () => start(input.files[0]));
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('drag-over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('drag-over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('drag-over');
    start(event.dataTransfer.files[0]);
  });

  return h('section', {'aria-labelledby': 'upload-heading'},
    h('h2', {id: 'upload-heading'}, 'Upload a customer file'), zone, outcome);
}

function report(name, accepted) {
  const r = accepted.ingest_report ?? {};
  const imputed = Object.entries(r.columns_imputed ?? {});
  const items = [
    h('li', {}, `Columns used: ${(r.columns_used ?? []).join(', ') || 'none'}.`),
    (r.columns_ignored ?? []).length
      ? h('li', {}, `Columns ignored: ${r.columns_ignored.join(', ')}.`) : null,
    imputed.length
      ? h('li', {}, `Filled in where missing or blank: ${
        imputed.map(([column, rows]) => `${column} (${count(rows)} rows)`).join(', ')}.`) : null,
    r.blank_rows_skipped ? h('li', {}, `Blank rows skipped: ${count(r.blank_rows_skipped)}.`) : null,
    ...(r.likely_mistakes ?? []).map((m) =>
      h('li', {class: 'warning'}, `Column "${m.header}" was ignored; did you mean ${m.looks_like}?`)),
  ];
  return h('div', {id: 'ingest-report', role: 'status', class: 'report'},
    h('p', {}, h('strong', {}, `${name}: ${count(accepted.rows)} customers accepted and queued for scoring. `),
      h('a', {href: `/predictions/${encodeURIComponent(accepted.prediction_id)}`}, 'Follow the prediction')),
    h('ul', {}, items));
}
