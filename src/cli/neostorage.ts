#!/usr/bin/env node
// neostorage: a NEO storage node (storage.md §1, §11.3).

import { STORAGE_OPTIONS } from '../core/config.js';
import { StorageApp } from '../storage/app.js';
import { daemonEnv, openMasterListOrExit, parseOrExit, runDaemon } from './common.js';

const config = parseOrExit('neostorage', 'NEO storage node: stores object data and transactions.', STORAGE_OPTIONS);
const masterList = openMasterListOrExit('neostorage', config.dynamicMasterList);
const env = daemonEnv('storage', config);
runDaemon(env, async () => {
  const app = new StorageApp(env, config, masterList === undefined ? {} : { masterList });
  // The node may stop by itself (--reset, or told DOWN/UNKNOWN by the master).
  void app.done.then((code) => process.exit(code));
  await app.start();
  return app;
});
