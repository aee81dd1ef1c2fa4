// A Logger for tests that records lines instead of printing them.

import type { Logger } from '../../src/core/env.js';

export interface RecordingLogger extends Logger {
  readonly lines: string[];
}

export function recordingLogger(prefix = '', lines: string[] = []): RecordingLogger {
  const log = (level: string) => (message: string) => void lines.push(`${level} ${prefix}${message}`);
  return {
    lines,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (name: string) => recordingLogger(`${prefix}${name}: `, lines),
  };
}
