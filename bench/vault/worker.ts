// One process of the vault benchmark: `tsx bench/vault/worker.ts <vault|gateway>`.
// Prints `READY <url>` on stdout once listening; settings come from the environment.
import { startGateway } from '../../gateway/src/server';
import { startVaultService } from '../../vault-svc/src/server';

const role = process.argv[2];
const handle = role === 'vault' ? await startVaultService({ env: process.env }) : await startGateway({ env: process.env });
process.stdout.write(`READY ${handle.url}\n`);
process.on('SIGTERM', () => void handle.close().finally(() => process.exit(0)));
