#!/usr/bin/env node
// Scaffolds an actor package: `npm run new-actor -- cart` writes packages/cart-actor with
// src/cart.ts (a defineActor with TypeBox inputs), src/index.ts, tests/cart.test.ts,
// package.json, tsconfig files, vitest and eslint configs like the other packages.
// `--dir <folder>` writes into another packages folder (tests use a temp one).
// Then: `npm install` (links the new workspace) and `npx nx sync`, and host it with
// runWorker({ actors: [cart] }).

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** `cart` → `Cart`, `device-twin` → `DeviceTwin`. @param {string} name */
const pascal = (name) => name.replace(/(^|-)([a-z0-9])/g, (_m, _d, /** @type {string} */ c) => c.toUpperCase());
/** `device-twin` → `deviceTwin`. @param {string} name */
const camel = (name) => pascal(name).replace(/^./, (c) => c.toLowerCase());

/**
 * The files of the package for actor type `name`, by path relative to the package.
 *
 * @param {string} name
 * @returns {Record<string, string>}
 */
export function actorPackageFiles(name) {
  const type = name;
  const Name = pascal(name);
  const id = camel(name);
  const json = (/** @type {unknown} */ v) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'package.json': json({
      name: `@jetactor/${name}-actor`,
      version: '0.1.0',
      private: true,
      description: `The ${type} actor`,
      type: 'module',
      license: 'Apache-2.0',
      engines: { node: '^20.19.0 || >=22.12.0' },
      main: './dist/index.js',
      types: './dist/index.d.ts',
      exports: {
        '.': { '@jetactor/source': './src/index.ts', types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' },
        './package.json': './package.json',
      },
      files: ['dist', '!**/*.tsbuildinfo'],
      dependencies: { '@jetactor/actor-runtime': '0.1.0' },
    }),
    'tsconfig.json': json({ files: [], include: [], references: [{ path: './tsconfig.lib.json' }, { path: './tsconfig.spec.json' }] }),
    'tsconfig.lib.json': json({
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/tsconfig.lib.tsbuildinfo', types: ['node'] },
      include: ['src/**/*.ts'],
      references: [{ path: '../actor-runtime/tsconfig.lib.json' }],
    }),
    'tsconfig.spec.json': json({
      extends: '../../tsconfig.base.json',
      compilerOptions: { outDir: 'out-tsc/spec', tsBuildInfoFile: 'out-tsc/spec/tsconfig.spec.tsbuildinfo', noEmit: false, emitDeclarationOnly: true, types: ['node', 'vitest/globals'] },
      include: ['tests/**/*.ts'],
      references: [{ path: './tsconfig.lib.json' }],
    }),
    'vitest.config.mts': `import { defineProject, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.mjs';

export default mergeConfig(base, defineProject({ test: { name: '${name}-actor' } }));
`,
    'eslint.config.mjs': `export { default } from '../../eslint.config.mjs';\n`,
    [`src/${name}.ts`]: `import { ActorError, NoInput, Type, defineActor } from '@jetactor/actor-runtime';

/** The input of \`add\` and \`remove\`: \`{"item": "apples"}\`. */
export const ItemInput = Type.Object({ item: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

/** The ${type}'s state. */
export interface ${Name}State {
  items: string[];
}

/**
 * The ${type} actor: a list of items. Handlers are pure: they see the state, the validated
 * input and the operation's context, and return the next state and the caller's result.
 */
export const ${id} = defineActor({
  type: '${type}',
  initialState: (): ${Name}State => ({ items: [] }),
  operations: {
    add: {
      input: ItemInput,
      handler: (state, { item }) => ({ state: { items: [...state.items, item] }, result: state.items.length + 1 }),
    },
    remove: {
      input: ItemInput,
      handler: (state, { item }) => {
        const at = state.items.indexOf(item);
        if (at < 0) throw new ActorError('NOT_FOUND', \`no item '\${item}'\`);
        return { state: { items: state.items.filter((_, i) => i !== at) }, result: state.items.length - 1 };
      },
    },
    clear: { input: NoInput, handler: () => ({ state: { items: [] }, result: 0 }) },
  },
  queries: {
    size: { input: NoInput, handler: (state) => state.items.length },
  },
});

/** The definition's type, derived from it. */
export type ${Name} = typeof ${id};
`,
    'src/index.ts': `/**
 * @packageDocumentation
 * The ${type} actor. Host it with \`runWorker({ actors: [${id}] })\` from \`@jetactor/actor-runtime\`.
 */
export { ItemInput, ${id} } from './${name}.js';
export type { ${Name}, ${Name}State } from './${name}.js';
`,
    [`tests/${name}.test.ts`]: `import { describe, expect, it } from 'vitest';
import { ActorError, InvalidInputError, type OperationContext } from '@jetactor/actor-runtime';
import { ${id} } from '../src/index.js';

const ctx = (op: string): OperationContext => ({ type: '${type}', key: 'k', op, seq: 1, time: new Date(0) });

describe('${type}', () => {
  it('adds, removes and clears items', () => {
    const one = ${id}.apply(${id}.initialState(), 'add', { item: 'a' }, ctx('add'));
    expect(one).toEqual({ state: { items: ['a'] }, result: 1 });
    expect(${id}.apply(one.state, 'remove', { item: 'a' }, ctx('remove'))).toEqual({ state: { items: [] }, result: 0 });
    expect(${id}.apply(one.state, 'clear', undefined, ctx('clear')).state).toEqual({ items: [] });
  });

  it('fails removing a missing item, with its code', () => {
    expect(() => ${id}.apply(${id}.initialState(), 'remove', { item: 'x' }, ctx('remove'))).toThrow(ActorError);
  });

  it('validates input with its schema', () => {
    expect(() => ${id}.parseInput('add', { item: '' })).toThrow(InvalidInputError);
    expect(() => ${id}.parseInput('add', { item: 'a', extra: 1 })).toThrow(InvalidInputError);
  });
});
`,
  };
}

/** Writes the package for `name` into `<packagesDir>/<name>-actor`; returns its path. @param {string} name @param {string} [packagesDir] */
export async function scaffoldActor(name, packagesDir = join(repoRoot, 'packages')) {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name) || name.length > 64) {
    throw new Error(`actor name must be lower-case letters and digits in dash-separated words (e.g. cart, device-twin), got '${name}'`);
  }
  if (name === 'call' || name === 'query') throw new Error(`'${name}' is a reserved actor type`);
  const dir = join(packagesDir, `${name}-actor`);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  for (const [file, text] of Object.entries(actorPackageFiles(name))) {
    const path = join(dir, file);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
  }
  return dir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const dirAt = args.indexOf('--dir');
  const packagesDir = dirAt >= 0 ? resolve(args[dirAt + 1] ?? '') : undefined;
  const name = args.filter((_, i) => dirAt < 0 || (i !== dirAt && i !== dirAt + 1))[0];
  if (!name) {
    console.error('usage: npm run new-actor -- <name> [--dir <packages folder>]   (e.g. npm run new-actor -- cart)');
    process.exit(2);
  }
  try {
    const dir = await scaffoldActor(name, packagesDir);
    console.log(`created ${dir}\nnext: npm install && npx nx sync, then npx nx test ${name}-actor; host it with runWorker({ actors: [${camel(name)}] })`);
  } catch (err) {
    console.error(`new-actor: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
