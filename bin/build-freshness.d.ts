/** The package's root folder. */
export declare const root: string;
/** When dist/cli/main.js was built (ms since the epoch), if it is newer than every source file. */
export declare function currentBuildTime(): number | undefined;
