#!/usr/bin/env node
// neomaster: the master node of a NEO cluster.

import { MASTER_OPTIONS } from '../core/config.js';
import { MasterApp } from '../master/app.js';
import { daemonEnv, openMasterListOrExit, parseOrExit, runDaemon } from './common.js';

const config = parseOrExit('neomaster', 'Start a NEO master node.', MASTER_OPTIONS);
const masterList = openMasterListOrExit('neomaster', config.dynamicMasterList);
const env = daemonEnv('master', config);
runDaemon(env, async () => {
  const app = new MasterApp(env, config, masterList);
  // A cluster stopped with `neoctl set cluster STOPPING` ends the process.
  void app.stopped.then(() => process.exit(0));
  await app.start();
  return app;
});
