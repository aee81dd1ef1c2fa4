#!/usr/bin/env node
// neoadmin: the admin node, through which neoctl controls the cluster.

import { AdminApp } from '../admin/app.js';
import { ADMIN_OPTIONS } from '../core/config.js';
import { daemonEnv, openMasterListOrExit, parseOrExit, runDaemon } from './common.js';

const config = parseOrExit('neoadmin', 'NEO Admin node', ADMIN_OPTIONS);
const masterList = openMasterListOrExit('neoadmin', config.dynamicMasterList);
const env = daemonEnv('admin', config);
runDaemon(env, async () => {
  const app = new AdminApp(env, config, masterList);
  await app.start();
  // Once the cluster is stopped (set cluster STOPPING), the admin exits with it.
  void app.stopped.then(() => process.exit(0));
  return app;
});
