import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { NeoConf } from '../../src/core/neoconf.js';

function conf(lines: string[]): NeoConf {
  return NeoConf.parse(lines.join('\n'), 'neo.conf');
}

function value(file: NeoConf, section: string, key: string): string | undefined {
  return file.get(section, key)?.value;
}

function assertParseError(lines: string[], message: RegExp): void {
  assert.throws(
    () => conf(lines),
    (error: unknown) => error instanceof ConfigError && message.test(error.message),
  );
}

describe('neo.conf syntax', () => {
  test('key = value and key: value, split at the first delimiter', () => {
    const file = conf([
      '[master]',
      'cluster = test',
      'bind: 127.0.0.1:10000',
      'masters=10.0.0.1:1',
      'database = neo:secret@db',
      'weird: a = b',
    ]);
    assert.equal(value(file, 'master', 'cluster'), 'test');
    assert.equal(value(file, 'master', 'bind'), '127.0.0.1:10000');
    assert.equal(value(file, 'master', 'masters'), '10.0.0.1:1');
    assert.equal(value(file, 'master', 'database'), 'neo:secret@db');
    assert.equal(value(file, 'master', 'weird'), 'a = b');
  });

  test('an empty value is an empty string', () => {
    assert.equal(value(conf(['[s]', 'key =']), 's', 'key'), '');
  });

  test('the line of each value is known', () => {
    const file = conf(['[s]', '', 'a = 1', 'b = 2']);
    assert.equal(file.get('s', 'b')?.line, 4);
  });

  test('sections are listed in file order, without DEFAULT', () => {
    assert.deepEqual(conf(['[DEFAULT]', '[b]', '[a]']).sectionNames(), ['b', 'a']);
  });

  test('comment lines start with # or ; even when indented; later # are part of the value', () => {
    const file = conf([
      '# a comment',
      '; another',
      '[s]',
      '  # indented comment',
      'a = 1 # not a comment',
      'b = x;y',
    ]);
    assert.equal(value(file, 's', 'a'), '1 # not a comment');
    assert.equal(value(file, 's', 'b'), 'x;y');
    assert.equal(file.get('s', '# indented comment'), undefined);
  });

  test('indented lines continue a value, joined with newlines', () => {
    const file = conf([
      '[admin]',
      'masters = 10.0.0.1:1',
      '    10.0.0.2:2',
      '',
      '\t10.0.0.3:3',
      '  # a comment inside is dropped',
      '  10.0.0.4:4',
      '',
      '',
      'next = 1',
    ]);
    assert.equal(value(file, 'admin', 'masters'), '10.0.0.1:1\n10.0.0.2:2\n\n10.0.0.3:3\n10.0.0.4:4');
    assert.equal(value(file, 'admin', 'next'), '1');
  });

  test('a value may start on the line after its key, after an empty first line', () => {
    const file = conf(['[admin]', 'monitor_email =', '  a@example.com', '  b@example.com']);
    assert.equal(value(file, 'admin', 'monitor_email'), '\na@example.com\nb@example.com');
  });

  test('an indented option right after a section header is an option, not a continuation', () => {
    const file = conf(['[s]', '  a = 1', '  b = 2']);
    assert.equal(value(file, 's', 'a'), '1');
    assert.equal(value(file, 's', 'b'), '2');
  });

  test('keys are case-insensitive, and - and _ are the same', () => {
    const file = conf(['[storage]', 'Disable-Drop-Partitions = true']);
    assert.equal(value(file, 'storage', 'disable_drop_partitions'), 'true');
    assert.equal(value(file, 'storage', 'DISABLE-DROP-PARTITIONS'), 'true');
  });

  test('section names are case-sensitive', () => {
    const file = conf(['[Master]', 'a = 1']);
    assert.equal(file.hasSection('Master'), true);
    assert.equal(file.hasSection('master'), false);
  });

  test('Windows line endings', () => {
    const file = NeoConf.parse('[s]\r\na = 1\r\n  2\r\n', 'neo.conf');
    assert.equal(value(file, 's', 'a'), '1\n2');
  });
});

describe('neo.conf DEFAULT section', () => {
  const file = conf([
    '[DEFAULT]',
    'cluster = prod',
    'masters = 10.0.0.1:10000',
    '[master]',
    'bind = 10.0.0.1:10000',
    '[storage]',
    'masters = 10.0.0.9:10000',
  ]);

  test('every section inherits DEFAULT', () => {
    assert.equal(value(file, 'master', 'cluster'), 'prod');
    assert.equal(file.get('master', 'cluster')?.section, 'DEFAULT');
  });

  test('a section overrides DEFAULT', () => {
    assert.equal(value(file, 'storage', 'masters'), '10.0.0.9:10000');
    assert.equal(file.get('storage', 'masters')?.section, 'storage');
    assert.equal(value(file, 'master', 'masters'), '10.0.0.1:10000');
  });

  test('a key set nowhere is undefined', () => {
    assert.equal(file.get('master', 'partitions'), undefined);
  });

  test('DEFAULT may be read as a section of its own', () => {
    assert.equal(value(file, 'DEFAULT', 'cluster'), 'prod');
  });

  test('DEFAULT may be opened twice', () => {
    const twice = conf(['[DEFAULT]', 'a = 1', '[DEFAULT]', 'b = 2', '[s]']);
    assert.equal(value(twice, 's', 'a'), '1');
    assert.equal(value(twice, 's', 'b'), '2');
  });
});

describe('neo.conf interpolation', () => {
  const file = conf([
    '[DEFAULT]',
    'base = /srv/neo',
    'logfile = %(base)s/%(name)s.log',
    '[storage]',
    'name = storage1',
    'database = %(BASE)s/db.sqlite',
    'percent = 100%%',
    'bad = 50%',
    'missing = %(nothing)s',
    'loop = %(loop)s',
  ]);

  test('%(key)s takes a value of the section or DEFAULT, %% is a percent sign', () => {
    assert.equal(value(file, 'storage', 'database'), '/srv/neo/db.sqlite');
    assert.equal(value(file, 'storage', 'percent'), '100%');
  });

  test('DEFAULT values are interpolated in the section that reads them', () => {
    assert.equal(value(file, 'storage', 'logfile'), '/srv/neo/storage1.log');
  });

  test('a lone %, a reference to nothing and a cycle are errors with file and line', () => {
    assert.throws(() => file.get('storage', 'bad'),
      /^ConfigError: neo\.conf:8: value of 'bad': '%' must be followed/);
    assert.throws(() => file.get('storage', 'missing'),
      /neo\.conf:9: .*'%\(nothing\)s' refers to no option/);
    assert.throws(() => file.get('storage', 'loop'), /neo\.conf:10: .*nested/);
  });
});

describe('neo.conf errors', () => {
  test('a missing section is named with the file', () => {
    const file = conf(['[master]']);
    assert.throws(() => file.get('storage', 'cluster'),
      /^ConfigError: neo\.conf: no section \[storage\]$/);
  });

  test('a malformed line gives file and line number', () => {
    assertParseError(['[s]', 'a = 1', 'just some words'],
      /^neo\.conf:3: expected '\[section\]', 'key = value'/);
    assertParseError(['[s]', '= 1'], /^neo\.conf:2: missing option name/);
    assertParseError(['[]'], /^neo\.conf:1: empty section name/);
  });

  test('an option before any section is an error', () => {
    assertParseError(['', 'cluster = x', '[s]'], /^neo\.conf:2: 'cluster' is outside of any section/);
  });

  test('a section or key given twice is an error', () => {
    assertParseError(['[s]', '[t]', '[s]'], /^neo\.conf:3: section \[s\] appears twice/);
    assertParseError(['[s]', 'a = 1', 'A = 2'], /^neo\.conf:3: 'a' is set twice in section \[s\]/);
    assertParseError(['[s]', 'new-nid = 1', 'new_nid = 1'], /^neo\.conf:3: 'new_nid' is set twice/);
    assertParseError(['[DEFAULT]', 'a = 1', '[DEFAULT]', 'a = 2'], /^neo\.conf:4: 'a' is set twice/);
  });
});
