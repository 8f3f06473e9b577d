// One process of the credits benchmark: `tsx bench/credits/worker.ts <credits|gateway>`.
// Prints `READY <url>` on stdout once listening; settings come from the environment.
import { startCreditsService } from '../../credits-svc/src/server';
import { startGateway } from '../../gateway/src/server';

const role = process.argv[2];
const handle = role === 'credits' ? await startCreditsService({ env: process.env }) : await startGateway({ env: process.env });
process.stdout.write(`READY ${handle.url}\n`);
process.on('SIGTERM', () => void handle.close().finally(() => process.exit(0)));
