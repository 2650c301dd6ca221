// The import rules of the repository, checked by `npm test` (scripts/test.mjs runs
// `depcruise`): no circles anywhere, and the runtime's layers point one way
// (see docs/design.md "Layers").
const runtime = '^packages/actor-runtime/src/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import circles, type-only imports included: a circle hides which module owns what.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'protocol-imports-nothing',
      severity: 'error',
      comment: 'The protocol (subjects, names, headers, codecs, control keys, errors) is the contract every other layer imports; it imports nothing of theirs.',
      from: { path: `${runtime}protocol/` },
      to: { path: runtime, pathNot: `${runtime}protocol/` },
    },
    {
      name: 'client-not-worker',
      severity: 'error',
      comment: 'The client talks the protocol; it never imports the worker (processing, ownership, host, worker.ts).',
      from: { path: `${runtime}client/` },
      to: { path: `${runtime}(processing/|ownership/|host/|worker)` },
    },
    {
      name: 'definition-not-worker',
      severity: 'error',
      comment: "An actor author's module (definition) needs neither the worker nor the client.",
      from: { path: `${runtime}definition/` },
      to: { path: `${runtime}(processing/|ownership/|host/|client/|worker)` },
    },
    {
      name: 'packages-through-entry-points',
      severity: 'error',
      comment: "Other packages import the runtime through its entry points (package.json exports), never its files.",
      from: { path: '^packages/', pathNot: '^packages/actor-runtime/' },
      to: { path: '^packages/actor-runtime/src/', pathNot: '^packages/actor-runtime/src/(index|client|worker-host|internal|protocol/index)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|out-tsc|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@jetactor/source', 'import', 'types', 'default'],
      mainFields: ['main', 'types'],
    },
  },
};
