// The scalars of Cloudflare's GraphQL Analytics schema that wrangler's queries name: `string`,
// `Time` (RFC 3339, carried inside as ms since the epoch), `Date` (YYYY-MM-DD), `uint64`, `float64`.
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { isoTime } from '../stats/groups.ts';

function literalString(ast: ValueNode, type: string): string {
  if (ast.kind !== Kind.STRING) throw new GraphQLError(`${type} takes a string literal`);
  return ast.value;
}

function parseTime(value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new GraphQLError(`not a time (RFC 3339, e.g. 2026-12-01T00:00:00Z): ${JSON.stringify(value)}`);
  return ms;
}

function parseDate(value: unknown): number {
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN;
  if (Number.isNaN(ms)) throw new GraphQLError(`not a date (YYYY-MM-DD): ${JSON.stringify(value)}`);
  return ms;
}

function parseString(value: unknown): string {
  if (typeof value !== 'string') throw new GraphQLError(`not a string: ${JSON.stringify(value)}`);
  return value;
}

export const StringScalar = new GraphQLScalarType({
  name: 'string',
  serialize: (v) => String(v),
  parseValue: parseString,
  parseLiteral: (ast) => literalString(ast, 'string'),
});

export const TimeScalar = new GraphQLScalarType({
  name: 'Time',
  serialize: (v) => (typeof v === 'number' ? isoTime(v) : String(v)),
  parseValue: parseTime,
  parseLiteral: (ast) => parseTime(literalString(ast, 'Time')),
});

export const DateScalar = new GraphQLScalarType({
  name: 'Date',
  serialize: (v) => (typeof v === 'number' ? isoTime(v).slice(0, 10) : String(v)),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(literalString(ast, 'Date')),
});

const number = (name: string) =>
  new GraphQLScalarType({
    name,
    serialize: (v) => Number(v),
    parseValue: (v) => {
      if (typeof v !== 'number') throw new GraphQLError(`${name} takes a number, got ${JSON.stringify(v)}`);
      return v;
    },
    parseLiteral: (ast) => {
      if (ast.kind !== Kind.INT && ast.kind !== Kind.FLOAT) throw new GraphQLError(`${name} takes a number literal`);
      return Number(ast.value);
    },
  });

export const Uint64Scalar = number('uint64');
export const Float64Scalar = number('float64');
