// ESM entry of dione/cloudflare-api (`node --import dione/cloudflare-api`): the CommonJS module does the work.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./cloudflare-api.cjs');
