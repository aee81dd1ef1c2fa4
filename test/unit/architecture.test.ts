// Guards the shape of the code described in ARCHITECTURE.md: roles never import each other,
// layers only import downwards, and only the real environment and the CLI reach the clock,
// timers, sockets or randomness directly.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT } from '../helpers/spec.js';

const SRC = join(PROJECT_ROOT, 'src');
const ROLES = ['master', 'storage', 'client', 'admin', 'ctl'];
/** What each folder may import (besides itself). */
const ALLOWED_IMPORTS: Record<string, string[]> = {
  protocol: [],
  core: ['protocol'],
  net: ['protocol', 'core'],
  master: ['net', 'core', 'protocol'],
  storage: ['net', 'core', 'protocol'],
  client: ['net', 'core', 'protocol'],
  admin: ['net', 'core', 'protocol'],
  ctl: ['net', 'core', 'protocol'],
};
/** The real environment: the only files allowed to touch time, timers, sockets and randomness. */
const REAL_WORLD = ['core/realenv.ts', 'net/tcp.ts', 'net/tls.ts'];

const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\b/, 'Date'],
  [/\bperformance\b/, 'performance'],
  [/\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|queueMicrotask)\b/, 'timers'],
  [/Math\.random/, 'Math.random'],
  [/\b(randomBytes|randomInt|randomUUID|getRandomValues|randomFill)\b/, 'crypto randomness'],
  [/from\s+'(node:)?(net|tls|dgram|timers|timers\/promises)'/, 'net/tls/timers modules'],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The code without comments and string contents (imports are read before this). */
function codeOnly(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``')
    .replace(/'(?:\\.|[^'\\\n])*'/g, "''")
    .replace(/"(?:\\.|[^"\\\n])*"/g, '""');
}

describe('architecture', () => {
  const files = sourceFiles(SRC).map((path) => ({
    path: relative(SRC, path).split(sep).join('/'),
    text: readFileSync(path, 'utf8'),
  }));

  it('roles never import another role, and layers only import downwards', () => {
    const problems: string[] = [];
    for (const { path, text } of files) {
      const folder = path.split('/')[0]!;
      const allowed = ALLOWED_IMPORTS[folder];
      if (allowed === undefined) continue; // cli, index: may import anything
      for (const match of text.matchAll(/from\s+'(\.\.?\/[^']+)'/g)) {
        const target = posix.join(posix.dirname(path), match[1]!).split('/')[0]!;
        if (target !== folder && !allowed.includes(target)) {
          problems.push(`${path} imports ${match[1]} (${folder} may import: ${allowed.join(', ') || 'nothing of ours'})`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('only the real environment and the CLI reach time, timers, sockets and randomness', () => {
    const problems: string[] = [];
    for (const { path, text } of files) {
      if (REAL_WORLD.includes(path) || path.startsWith('cli/')) continue;
      const code = codeOnly(text);
      const imports = text.match(/^import .*$/gm)?.join('\n') ?? '';
      for (const [pattern, what] of FORBIDDEN) {
        if (pattern.test(code) || pattern.test(imports)) problems.push(`${path} uses ${what}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('knows every role folder it guards', () => {
    for (const role of ROLES) assert.ok(ALLOWED_IMPORTS[role], role);
  });
});
