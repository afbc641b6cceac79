// Prisma Client 7 + @prisma/adapter-d1 on the embedded binding, in memory and on files in a fresh
// temporary directory. The suite generates the client itself (see prismaClient() in orm/prisma.ts).
import { after } from 'node:test';
import { fileFactory, memoryFactory } from './orm/embedded.ts';
import { prismaSuite, removeGeneratedPrismaClient } from './orm/prisma.ts';

after(removeGeneratedPrismaClient);

prismaSuite('embedded, :memory:', memoryFactory);

const files = fileFactory('orm-prisma');
after(files.cleanup);
prismaSuite('embedded, file', files.factory);
