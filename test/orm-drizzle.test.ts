// drizzle-orm/d1 on the embedded binding, in memory and on files in a fresh temporary directory.
import { after } from 'node:test';
import { drizzleSuite } from './orm/drizzle.ts';
import { fileFactory, memoryFactory } from './orm/embedded.ts';

drizzleSuite('embedded, :memory:', memoryFactory);

const files = fileFactory('orm-drizzle');
after(files.cleanup);
drizzleSuite('embedded, file', files.factory);
