import base from '../../eslint.config.mjs';

// public/ holds the dashboard's plain browser scripts, outside the TypeScript project.
export default [...base, { ignores: ['public/**'] }];
