// A second Node process answering Ping with Pong over our own connection code: the loopback
// round-trip baseline. Tells its parent the port it listens on.

import { Connection } from '../src/net/connection.js';
import { tcpTransport } from '../src/net/tcp.js';
import { createLogger } from '../src/core/realenv.js';

const logger = createLogger({ level: 'error' });
const listener = await tcpTransport().listen({ host: '127.0.0.1', port: 0 }, (stream) => {
  new Connection({ stream, logger, label: 'bench', handler: { Ping: (conn) => conn.answer('Pong', []) } });
});
process.send!(listener.address.port);
process.on('disconnect', () => process.exit(0));
