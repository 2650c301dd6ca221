import { defineProject, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.mjs';

export default mergeConfig(base, defineProject({ test: { name: 'worker' } }));
