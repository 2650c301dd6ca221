/** Version the CLI reports with `--version`. */
export const CLI_VERSION = '0.1.0';
