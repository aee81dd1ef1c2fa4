import assert, { AssertionError } from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ADMIN_OPTIONS,
  MASTER_OPTIONS,
  NEOCTL_OPTIONS,
  STORAGE_OPTIONS,
  defineOptions,
  formatHelp,
  loadConfig,
} from '../../src/core/config.js';
import type { ConfigEnv, LoadResult, OptionSpec } from '../../src/core/config.js';
import type { Address } from '../../src/core/env.js';
import { ConfigError } from '../../src/core/errors.js';

const HOME = '/home/neo';

/** An environment whose files are the given texts, keyed by path. */
function files(contents: Record<string, string[]>): ConfigEnv {
  return {
    home: HOME,
    readFile: (path) => {
      const lines = contents[path];
      if (lines === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return lines.join('\n');
    },
  };
}

const NO_FILES = files({});

function configOf<T extends readonly OptionSpec[]>(result: LoadResult<T>) {
  assert.equal(result.help, false);
  if (result.help) throw new Error('unreachable');
  return result.config;
}

function master(argv: string[], env: ConfigEnv = NO_FILES) {
  return configOf(loadConfig(MASTER_OPTIONS, argv, env));
}

function storage(argv: string[], env: ConfigEnv = NO_FILES) {
  return configOf(loadConfig(STORAGE_OPTIONS, argv, env));
}

function admin(argv: string[], env: ConfigEnv = NO_FILES) {
  return configOf(loadConfig(ADMIN_OPTIONS, argv, env));
}

function neoctl(argv: string[]) {
  return configOf(loadConfig(NEOCTL_OPTIONS, argv, NO_FILES));
}

/** Asserts a ConfigError about `option` whose message matches every pattern. */
function assertConfigError(run: () => unknown, option: string | undefined, ...patterns: RegExp[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.code, 'EBADCONFIG');
    assert.equal(error.option, option);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('defaults', () => {
  test('a master needs only a cluster name', () => {
    const config = master(['-c', 'test']);
    assert.equal(config.partitions, 100);
    assert.equal(config.cluster, 'test');
    assert.deepEqual(config.bind, { host: '127.0.0.1', port: 10000 });
    assert.deepEqual(config.masters, []);
    assert.equal(config.replicas, 0);
    assert.equal(config.autostart, undefined);
    assert.equal(config.backup, false);
    assert.equal(config.upstreamCluster, undefined);
    assert.equal(config.upstreamMasters, undefined);
    assert.equal(config.nid, undefined);
    assert.equal(config.section, 'master');
    assert.equal(config.file, undefined);
    assert.equal(config.logfile, undefined);
    assert.equal(config.ca, undefined);
  });

  test('a storage node binds to any port of 127.0.0.1 and joins the master on 127.0.0.1:10000', () => {
    const config = storage(['-c', 'test', '-d', '/tmp/s.sqlite']);
    assert.deepEqual(config.bind, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(config.masters, [{ host: '127.0.0.1', port: 10000 }]);
    assert.equal(config.adapter, 'SQLite');
    assert.equal(config.database, '/tmp/s.sqlite');
    assert.equal(config.wait, 0);
    assert.equal(config.engine, undefined);
    assert.equal(config.reset, false);
    assert.equal(config.dedup, false);
    assert.equal(config.newNid, false);
    assert.equal(config.disablePack, false);
    assert.equal(config.disableDropPartitions, false);
    assert.equal(config.section, 'storage');
  });

  test('an admin node listens on 127.0.0.1:9999', () => {
    const config = admin(['-c', 'test']);
    assert.deepEqual(config.bind, { host: '127.0.0.1', port: 9999 });
    assert.deepEqual(config.masters, [{ host: '127.0.0.1', port: 10000 }]);
    assert.equal(config.monitorMaxlag, 0);
    assert.deepEqual(config.monitorEmail, []);
    assert.deepEqual(config.monitorBackup, []);
    assert.equal(config.smtp, 'localhost');
    assert.equal(config.smtpTls, false);
    assert.equal(config.smtpAuth, undefined);
    assert.equal(config.section, 'admin');
  });

  test('neoctl talks to the admin on 127.0.0.1:9999', () => {
    const config = neoctl([]);
    assert.deepEqual(config.address, { host: '127.0.0.1', port: 9999 });
    assert.deepEqual(config.cmd, []);
  });
});

test('the configuration is typed from the option table', () => {
  const config = storage(['-c', 'x', '-d', 'db', '-e', 'InnoDB']);
  const bind: Address = config.bind;
  const masters: readonly Address[] = config.masters;
  const wait: number = config.wait;
  const reset: boolean = config.reset;
  const adapter: 'SQLite' | 'Memory' = config.adapter;
  const engine: 'InnoDB' | 'RocksDB' | undefined = config.engine;
  // @ts-expect-error: an option without a default may be missing.
  const nid: number = config.nid;
  // @ts-expect-error: storage nodes have no partitions option.
  assert.equal(config.partitions, undefined);
  const emails: readonly string[] = admin(['-c', 'x']).monitorEmail;
  const cmd: readonly string[] = neoctl([]).cmd;
  assert.deepEqual([bind.port, masters.length, wait, reset, adapter, engine, nid, emails, cmd],
    [0, 1, 0, false, 'SQLite', 'InnoDB', undefined, [], []]);
});

test('a mistake in an option table is a bug, caught when it is defined', () => {
  const flag = { name: 'flag', type: 'bool', help: '' } as const;
  assert.throws(() => defineOptions([flag, flag]), AssertionError);
  assert.throws(() => defineOptions([{ name: 'a', short: 'h', type: 'bool', help: '' }]), AssertionError);
  assert.throws(() => defineOptions([{ name: 'n', type: 'int', default: 'x', help: '' }]),
    AssertionError);
  assert.throws(
    () => defineOptions([{ name: 'c', type: 'string', required: true, default: 'x', help: '' }]),
    AssertionError,
  );
  assert.throws(() => defineOptions([{ name: 'file', type: 'path', help: '' }]), AssertionError);
});

describe('command line', () => {
  test('master: every short letter', () => {
    const config = master([
      '-c', 'prod', '-b', '10.0.0.1:2000', '-m', '10.0.0.2:2000 10.0.0.3:2000', '-p', '12', '-r', '2',
      '-A', '3', '-C', 'upstream', '-M', '10.1.0.1:2000', '-B', '-i', '7', '-l', '/var/log/m.log',
      '-D', '/var/lib/masters.json',
    ]);
    assert.equal(config.cluster, 'prod');
    assert.deepEqual(config.bind, { host: '10.0.0.1', port: 2000 });
    assert.deepEqual(config.masters, [{ host: '10.0.0.2', port: 2000 }, { host: '10.0.0.3', port: 2000 }]);
    assert.equal(config.partitions, 12);
    assert.equal(config.replicas, 2);
    assert.equal(config.autostart, 3);
    assert.equal(config.upstreamCluster, 'upstream');
    assert.deepEqual(config.upstreamMasters, [{ host: '10.1.0.1', port: 2000 }]);
    assert.equal(config.backup, true);
    assert.equal(config.nid, 7);
    assert.equal(config.logfile, '/var/log/m.log');
    assert.equal(config.dynamicMasterList, '/var/lib/masters.json');
  });

  test('storage: every short letter and long flag', () => {
    const config = storage([
      '-c', 'prod', '-a', 'Memory', '-d', 'neo:pw@neo1', '-e', 'RocksDB', '-w', '2.5', '-i', '3',
      '--reset', '--dedup', '--new-nid', '--disable-pack', '--disable-drop-partitions',
    ]);
    assert.equal(config.adapter, 'Memory');
    assert.equal(config.database, 'neo:pw@neo1');
    assert.equal(config.engine, 'RocksDB');
    assert.equal(config.wait, 2.5);
    assert.equal(config.nid, 3);
    assert.equal(config.reset, true);
    assert.equal(config.dedup, true);
    assert.equal(config.newNid, true);
    assert.equal(config.disablePack, true);
    assert.equal(config.disableDropPartitions, true);
  });

  test('long options with = and grouped short flags', () => {
    const config = master(['--cluster=prod', '--partitions=7', '-Bp', '9', '-r3']);
    assert.equal(config.cluster, 'prod');
    assert.equal(config.partitions, 9);
    assert.equal(config.backup, true);
    assert.equal(config.replicas, 3);
  });

  test('a negative number is a value, not an option: --wait -1 waits forever', () => {
    const argv = ['-c', 'x', '-d', 'db'];
    assert.equal(storage([...argv, '--wait', '-1']).wait, -1);
    assert.equal(storage([...argv, '-w', '-1']).wait, -1);
    assert.equal(storage([...argv, '--wait=-1']).wait, -1);
    assertConfigError(() => storage([...argv, '-w', '-2']), 'wait', /-w\/--wait: -2 is less than -1/);
  });

  test('repeatable options collect every value', () => {
    const config = admin(['-c', 'x', '--monitor-email', 'a@example.com', '--monitor-email', 'b@example.com',
      '--monitor-backup', 'backup1', '--monitor-maxlag', '30', '--smtp', 'mail:25', '--smtp-tls',
      '--smtp-auth', 'user:pass']);
    assert.deepEqual(config.monitorEmail, ['a@example.com', 'b@example.com']);
    assert.deepEqual(config.monitorBackup, ['backup1']);
    assert.equal(config.monitorMaxlag, 30);
    assert.equal(config.smtp, 'mail:25');
    assert.equal(config.smtpTls, true);
    assert.equal(config.smtpAuth, 'user:pass');
  });

  test('port 0 and IPv6 listening addresses', () => {
    assert.deepEqual(master(['-c', 'x', '-b', '127.0.0.1:0']).bind, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(master(['-c', 'x', '-b', '[::1]:10000']).bind, { host: '::1', port: 10000 });
    assert.deepEqual(master(['-c', 'x', '-b', '::1']).bind, { host: '::1', port: 0 });
    assert.deepEqual(storage(['-c', 'x', '-d', 'db', '-m', '[::1]:1,[::1]:2']).masters, [
      { host: '::1', port: 1 },
      { host: '::1', port: 2 },
    ]);
  });

  test('~ is expanded in paths', () => {
    const config = master(['-c', 'x', '-l', '~/neo/master.log',
      '--ca', '~', '--cert', '~user/c', '--key', 'k~']);
    assert.equal(config.logfile, `${HOME}/neo/master.log`);
    assert.equal(config.ca, HOME);
    assert.equal(config.cert, '~user/c');
    assert.equal(config.key, 'k~');
  });

  test('the last of a repeated option wins', () => {
    assert.equal(master(['-c', 'a', '-c', 'b']).cluster, 'b');
  });
});

describe('command line errors', () => {
  test('an unknown option is named, with a pointer to --help', () => {
    assertConfigError(() => master(['-c', 'x', '--bogus']), 'bogus', /unknown option '--bogus'/, /--help/);
    assertConfigError(() => master(['-c', 'x', '--bogus=1']), 'bogus', /unknown option '--bogus'/);
    assertConfigError(() => master(['-c', 'x', '-Bz']), 'z', /unknown option '-z'/);
    assertConfigError(() => master(['-c', 'x', '--constructor']), 'constructor',
      /unknown option '--constructor'/);
    // A storage-only option is unknown to a master.
    assertConfigError(() => master(['-c', 'x', '--reset']), 'reset', /unknown option '--reset'/);
  });

  test('a missing required option says where it can be set', () => {
    assertConfigError(() => master([]), 'cluster', /missing required option -c\/--cluster/, /command line/,
      /configuration file/);
    assertConfigError(() => storage(['-c', 'x']), 'database', /missing required option -d\/--database/);
  });

  test('a value that is not a number', () => {
    assertConfigError(() => master(['-c', 'x', '-p', 'many']), 'partitions',
      /option -p\/--partitions: 'many' is not an integer/);
    assertConfigError(() => master(['-c', 'x', '-p', '1.5']), 'partitions', /not an integer/);
    assertConfigError(() => master(['-c', 'x', '-p', '99999999999999999999']), 'partitions',
      /not an integer/);
    assertConfigError(() => storage(['-c', 'x', '-d', 'db', '-w', 'soon']), 'wait', /'soon' is not a number/);
  });

  test('numbers below their minimum', () => {
    assertConfigError(() => master(['-c', 'x', '-p', '0']), 'partitions', /0 is less than 1/);
    assertConfigError(() => master(['-c', 'x', '-r', '-1']), 'replicas', /-1 is less than 0/);
    assertConfigError(() => master(['-c', 'x', '-A', '0']), 'autostart', /0 is less than 1/);
  });

  test('a malformed address names the option', () => {
    assertConfigError(() => master(['-c', 'x', '-b', '127.0.0.1:99999']), 'bind',
      /option -b\/--bind: bad address '127\.0\.0\.1:99999': port 99999 is out of range/);
    assertConfigError(() => storage(['-c', 'x', '-d', 'db', '-m', '10.0.0.1']), 'masters',
      /-m\/--masters: bad address '10\.0\.0\.1': missing port/);
    assertConfigError(() => neoctl(['-a', 'admin.example.com']), 'address', /not a numeric IP address/);
  });

  test('a value outside the choices', () => {
    assertConfigError(() => storage(['-c', 'x', '-d', 'db', '-a', 'sqlite']), 'adapter',
      /'sqlite' is not one of SQLite, Memory/);
  });

  test('empty values are refused', () => {
    assertConfigError(() => master(['--cluster=']), 'cluster', /empty value/);
  });

  test('a missing value, or a value given to a flag', () => {
    assertConfigError(() => master(['-c']), undefined, /argument missing/, /--help/);
    assertConfigError(() => master(['-c', 'x', '--backup=yes']), undefined, /does not take an argument/);
    assertConfigError(() => master(['-c', '--bind', '127.0.0.1:1']), undefined, /ambiguous/);
  });

  test('daemons take no arguments besides options', () => {
    assertConfigError(() => master(['-c', 'x', 'extra']), undefined, /unexpected argument 'extra'/);
    assertConfigError(() => master(['-c', 'x', '--', '-p']), undefined, /unexpected argument '-p'/);
    assert.equal(master(['-c', 'x', '--']).cluster, 'x');
  });
});

describe('TLS', () => {
  test('all three files, or none', () => {
    const config = master(['-c', 'x', '--ca', 'ca.pem', '--cert', 'cert.pem', '--key', 'key.pem']);
    assert.deepEqual([config.ca, config.cert, config.key], ['ca.pem', 'cert.pem', 'key.pem']);
  });

  test('a partial setup is an error naming what is missing', () => {
    assertConfigError(() => master(['-c', 'x', '--ca', 'ca.pem']), 'cert', /TLS needs --ca, --cert and --key together/,
      /--cert and --key missing/);
    assertConfigError(() => neoctl(['--cert', 'c', '--key', 'k']), 'ca', /--ca missing/);
  });

  test('the check covers files given in a configuration file', () => {
    const env = files({
      '/etc/neo.conf': ['[DEFAULT]', 'ca = /etc/ca.pem', 'cert = /etc/cert.pem', '[master]'],
    });
    assertConfigError(() => master(['-c', 'x', '-f', '/etc/neo.conf'], env), 'key', /--key missing/);
    assert.equal(master(['-c', 'x', '-f', '/etc/neo.conf', '--key', 'k.pem'], env).key, 'k.pem');
  });
});

describe('configuration file', () => {
  const neoConf = [
    '[DEFAULT]',
    'cluster = prod',
    'masters = 10.0.0.1:10000',
    '  10.0.0.2:10000',
    'partitions = 12',
    'ca = ~/tls/ca.pem',
    'cert = ~/tls/cert.pem',
    'key = ~/tls/key.pem',
    '[master]',
    'bind = 10.0.0.1:10000',
    'replicas = 1',
    'autostart = 2',
    'upstream_cluster = other',
    '[storage]',
    'bind = 10.0.0.5',
    'database = ~/neo/storage.sqlite',
    'adapter = SQLite',
    'disable_drop_partitions = yes',
    'dedup = off',
    'wait = -1',
    'unknown_option = is ignored',
    '[storage2]',
    'database = /srv/db2',
    'new-nid = true',
    '[admin]',
    'monitor_email = a@example.com',
    '  b@example.com',
    'monitor_backup = backup',
  ];
  const env = files({ '/etc/neo.conf': neoConf, [`${HOME}/neo.conf`]: ['[master]', 'cluster = mine'] });

  test('a section and DEFAULT fill in what the command line does not give', () => {
    const config = master(['-f', '/etc/neo.conf'], env);
    assert.equal(config.cluster, 'prod');
    assert.deepEqual(config.bind, { host: '10.0.0.1', port: 10000 });
    assert.deepEqual(config.masters, [{ host: '10.0.0.1', port: 10000 }, { host: '10.0.0.2', port: 10000 }]);
    assert.equal(config.partitions, 12);
    assert.equal(config.replicas, 1);
    assert.equal(config.autostart, 2);
    assert.equal(config.upstreamCluster, 'other');
    assert.equal(config.ca, `${HOME}/tls/ca.pem`);
    assert.equal(config.file, '/etc/neo.conf');
  });

  test('command line wins over section, which wins over DEFAULT, which wins over defaults', () => {
    const config = master(['-f', '/etc/neo.conf', '-r', '0', '-c', 'cli'], env);
    assert.equal(config.cluster, 'cli');
    assert.equal(config.replicas, 0);
    assert.equal(config.partitions, 12);
    const bind = storage(['-f', '/etc/neo.conf', '-b', '10.0.0.6:7'], env).bind;
    assert.deepEqual(bind, { host: '10.0.0.6', port: 7 });
  });

  test('each daemon reads its own section by default', () => {
    const config = storage(['-f', '/etc/neo.conf'], env);
    assert.deepEqual(config.bind, { host: '10.0.0.5', port: 0 });
    // As in NEO, a database is a connection string, not a path: `~` stays.
    assert.equal(config.database, '~/neo/storage.sqlite');
    assert.equal(config.disableDropPartitions, true);
    assert.equal(config.dedup, false);
    assert.equal(config.wait, -1);
    assert.equal(config.newNid, false);
    const adminConfig = admin(['-f', '/etc/neo.conf'], env);
    assert.deepEqual(adminConfig.monitorEmail, ['a@example.com', 'b@example.com']);
    assert.deepEqual(adminConfig.monitorBackup, ['backup']);
    assert.deepEqual(adminConfig.bind, { host: '127.0.0.1', port: 9999 });
  });

  test('-s chooses another section; option names may use - in files', () => {
    const config = storage(['-f', '/etc/neo.conf', '-s', 'storage2'], env);
    assert.equal(config.database, '/srv/db2');
    assert.equal(config.newNid, true);
    assert.equal(config.section, 'storage2');
  });

  test('the command line replaces a repeatable option of the file', () => {
    const config = admin(['-f', '/etc/neo.conf', '--monitor-email', 'c@example.com'], env);
    assert.deepEqual(config.monitorEmail, ['c@example.com']);
  });

  test('~ is expanded in the file name', () => {
    assert.equal(master(['-f', '~/neo.conf'], env).cluster, 'mine');
  });

  test('a file cannot name another file or section', () => {
    const looping = files({ '/a.conf': ['[master]', 'cluster = a', 'file = /b.conf', 'section = other'] });
    const config = master(['-f', '/a.conf'], looping);
    assert.equal(config.file, '/a.conf');
    assert.equal(config.section, 'master');
  });

  test('a missing section is named with the sections the file has', () => {
    assertConfigError(() => master(['-f', '/etc/neo.conf', '-s', 'nope'], env), 'section',
      /\/etc\/neo\.conf has no section \[nope\]/, /\[storage2\]/, /-s\/--section/);
  });

  test('an unreadable file is named', () => {
    assertConfigError(() => master(['-c', 'x', '-f', '/missing.conf'], env), 'file',
      /cannot read configuration file \/missing\.conf: ENOENT/);
  });

  test('a missing required option names the section and file', () => {
    const empty = files({ '/e.conf': ['[storage]', 'adapter = SQLite'] });
    assertConfigError(() => storage(['-f', '/e.conf', '-c', 'x'], empty), 'database',
      /missing required option -d\/--database: set it on the command line,/,
      /or as 'database' in section \[storage\] of \/e\.conf/);
  });

  test('bad values in a file give the file, line, key and section', () => {
    const bad = files({
      '/bad.conf': [
        '[DEFAULT]', 'partitions = lots',
        '[master]', 'cluster = x', 'backup = maybe', 'bind = 10.0.0.1:x',
      ],
    });
    assertConfigError(() => master(['-f', '/bad.conf', '-p', '1', '-b', '::1'], bad), 'backup',
      /^\/bad\.conf:5 \('backup' in \[master\]\): 'maybe' is not a boolean/);
    assertConfigError(() => master(['-f', '/bad.conf', '-B', '-b', '::1'], bad), 'partitions',
      /^\/bad\.conf:2 \('partitions' in \[DEFAULT\]\): 'lots' is not an integer/);
    assertConfigError(() => master(['-f', '/bad.conf', '-B', '-p', '1'], bad), 'bind',
      /^\/bad\.conf:6 \('bind' in \[master\]\): bad address '10\.0\.0\.1:x'/);
  });

  test('syntax errors in the file give its name and line', () => {
    const broken = files({ '/broken.conf': ['[master]', 'cluster x'] });
    assertConfigError(() => master(['-f', '/broken.conf'], broken), undefined, /^\/broken\.conf:2: expected/);
  });
});

describe('--help', () => {
  test('asks for help even when required options are missing', () => {
    assert.deepEqual(loadConfig(MASTER_OPTIONS, ['--help'], NO_FILES), { help: true });
    assert.deepEqual(loadConfig(STORAGE_OPTIONS, ['-c', 'x', '-h'], NO_FILES), { help: true });
  });

  test('for neoctl, options after the command belong to the command', () => {
    const config = neoctl(['-a', '10.0.0.1', 'print', 'cluster', '-h', '--x']);
    assert.deepEqual(config.address, { host: '10.0.0.1', port: 9999 });
    assert.deepEqual(config.cmd, ['print', 'cluster', '-h', '--x']);
    assert.deepEqual(neoctl(['--', '-n']).cmd, ['-n']);
    assertConfigError(() => neoctl(['--bogus', 'print', 'cluster']), 'bogus', /unknown option '--bogus'/);
  });

  const programs = [
    ['neomaster', MASTER_OPTIONS],
    ['neostorage', STORAGE_OPTIONS],
    ['neoadmin', ADMIN_OPTIONS],
    ['neoctl', NEOCTL_OPTIONS],
  ] as const;

  for (const [program, options] of programs) {
    test(`${program} --help lists every option with its default`, () => {
      const help = formatHelp(program, options, 'NEO node');
      // Help text may wrap anywhere between words.
      const flat = help.replace(/\n {2,}/g, ' ');
      assert.match(help, new RegExp(`^usage: ${program} \\[options\\]`));
      assert.match(help, /-h, --help/);
      const specs: readonly OptionSpec[] = options;
      for (const spec of specs) {
        if (spec.type === 'rest') {
          assert.match(help, new RegExp(`\\n  ${spec.name} \\.\\.\\.`));
          continue;
        }
        const names = spec.short === undefined ? `--${spec.name}` : `-${spec.short}, --${spec.name}`;
        assert.ok(help.includes(`\n  ${names}`), `${program}: ${names} missing`);
        if (spec.default !== undefined) {
          const shown = spec.default === '' ? 'none' : spec.default;
          assert.ok(flat.includes(`default: ${shown}`), `${program}: default of --${spec.name} missing`);
        }
      }
      for (const line of help.split('\n')) assert.ok(line.length <= 79, `too long: ${line}`);
    });
  }

  test('help text details', () => {
    const storageHelp = formatHelp('neostorage', STORAGE_OPTIONS, 'NEO Storage node');
    assert.match(storageHelp, /^usage: neostorage \[options\]\n\nNEO Storage node\n\noptions:\n/);
    // Help text may wrap anywhere between words.
    const flat = (text: string): string => text.replace(/\s+/g, ' ');
    assert.match(flat(storageHelp), / -d, --database DATABASE the database: .* \(required\)/);
    assert.match(flat(storageHelp), / -a, --adapter ADAPTER database adapter: SQLite \(embedded\) or Memory/);
    assert.match(flat(storageHelp), /\(one of: SQLite, Memory; default: SQLite\)/);
    assert.match(flat(storageHelp), / --reset erase the database/);
    assert.match(flat(storageHelp), /section \[storage\]/);
    assert.doesNotMatch(storageHelp, /Repeatable/);
    const adminHelp = flat(formatHelp('neoadmin', ADMIN_OPTIONS));
    assert.match(adminHelp, / --monitor-email ADDRESS send notifications .* \(may be repeated\)/);
    assert.match(adminHelp, /Repeatable options take one value per line/);
    assert.match(flat(formatHelp('neomaster', MASTER_OPTIONS)),
      / -m, --masters MASTERS space-separated list of master node addresses \(default: none\)/);
    assert.match(formatHelp('neoctl', NEOCTL_OPTIONS),
      /^usage: neoctl \[options\] \[cmd \.\.\.\]\n\npositional arguments:\n/);
  });
});
