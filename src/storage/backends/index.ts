// Opening a storage backend by adapter name (`--adapter`, `--database`).

import type { Backend } from './backend.js';
import { DatabaseFailure } from './backend.js';
import { MemoryBackend } from './memory.js';
import { SQLiteBackend } from './sqlite.js';

export const ADAPTERS = ['SQLite', 'Memory'] as const;

/** Opens (and locks) a database; Memory ignores `database` and starts empty. */
export function openBackend(adapter: string, database: string): Backend {
  switch (adapter) {
    case 'SQLite':
      return new SQLiteBackend(database);
    case 'Memory':
      return new MemoryBackend();
    default:
      throw new DatabaseFailure(`unknown adapter ${JSON.stringify(adapter)} (known: ${ADAPTERS.join(', ')})`);
  }
}
