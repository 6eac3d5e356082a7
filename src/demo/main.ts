// Placeholder demo: acquire the device exactly as Node does (GpuRuntime.create) and show what was
// granted, or the typed error and what to do about it.

import { describeCapabilities, GpuRuntime, type GpuCapabilities } from '../gpu/index.js';
import { capabilityRows } from './capability-rows.js';
import { explainError } from './error-help.js';

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el as T;
}

const status = byId<HTMLParagraphElement>('status');
const summary = byId<HTMLParagraphElement>('summary');
const table = byId<HTMLTableElement>('capabilities');
const errorBox = byId<HTMLDivElement>('error');

function setState(state: 'loading' | 'ready' | 'error', text: string): void {
  status.dataset.state = state;
  status.textContent = text;
}

function showCapabilities(caps: GpuCapabilities): void {
  summary.textContent = describeCapabilities(caps);
  summary.hidden = false;
  const body = table.tBodies[0] ?? table.createTBody();
  let group = '';
  for (const row of capabilityRows(caps)) {
    if (row.group !== group) {
      group = row.group;
      const tr = body.insertRow();
      tr.className = 'group';
      const th = document.createElement('th');
      th.colSpan = 2;
      th.scope = 'colgroup';
      th.textContent = group;
      tr.append(th);
    }
    const tr = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = row.label;
    const td = document.createElement('td');
    td.dataset.testid = `cap-${row.id}`;
    td.textContent = row.value;
    if (row.muted) td.className = 'muted';
    tr.append(th, td);
  }
  table.hidden = false;
}

function showError(error: unknown): void {
  const report = explainError(error, window.isSecureContext);
  setState('error', 'WebGPU is not usable here.');
  const field = (testid: string): HTMLElement => errorBox.querySelector<HTMLElement>(`[data-testid="${testid}"]`)!;
  field('error-name').textContent = report.name;
  field('error-message').textContent = report.message;
  field('error-help').textContent = report.help;
  errorBox.hidden = false;
}

async function main(): Promise<void> {
  try {
    // Kept alive: the real demo will run the engine on this runtime.
    const rt = await GpuRuntime.create({ onLost: showError });
    showCapabilities(rt.capabilities);
    setState('ready', 'WebGPU device acquired.');
  } catch (error) {
    showError(error);
  }
}

void main();
