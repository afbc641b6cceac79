// kysely + kysely-d1 on the embedded binding, in memory and on files in a fresh temporary directory.
import { after } from 'node:test';
import { fileFactory, memoryFactory } from './orm/embedded.ts';
import { kyselySuite } from './orm/kysely.ts';

kyselySuite('embedded, :memory:', memoryFactory);

const files = fileFactory('orm-kysely');
after(files.cleanup);
kyselySuite('embedded, file', files.factory);
