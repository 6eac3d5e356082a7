// Cache management: the hub models this browser keeps in the Cache API, with their sizes, and a
// Delete button each (deleteCachedModel). Refreshed after every load.

import { deleteCachedModel, listCachedModels, type CachedModel } from '../index.js';
import { byId, el, fmtBytes } from './dom.js';

export class CachePanel {
  private readonly table = byId<HTMLTableElement>('cache-table');
  private readonly empty = byId<HTMLElement>('cache-empty');

  constructor(private readonly endpoint: () => string | undefined) {}

  async refresh(): Promise<void> {
    let models: CachedModel[];
    try {
      const endpoint = this.endpoint();
      models = await listCachedModels(endpoint ? { endpoint } : undefined);
    } catch {
      models = []; // no Cache API here (an insecure context): nothing to manage
    }
    const body = this.table.tBodies[0]!;
    body.replaceChildren(
      ...models.map((m) => {
        const remove = el('button', { type: 'button' }, 'Delete');
        remove.setAttribute('aria-label', `Delete ${m.repoId} from the cache`);
        remove.addEventListener('click', () => {
          remove.disabled = true;
          void deleteCachedModel(m.repoId, { revision: m.revision, endpoint: m.endpoint })
            .catch(() => undefined) // the list below shows what is still there
            .then(() => this.refresh());
        });
        const row = el('tr', { 'data-repo': m.repoId });
        row.append(el('td', {}, m.repoId), el('td', {}, m.revision), el('td', {}, fmtBytes(m.bytes)), el('td', {}, remove));
        return row;
      }),
    );
    this.table.hidden = models.length === 0;
    this.empty.hidden = models.length > 0;
  }
}
