/**
 * Statistics over seeds for the reports: mean ± standard error, Welch's and
 * paired t-tests, and the interquartile mean with stratified bootstrap intervals.
 *
 * @module
 */
export * from "./summary.ts";
export * from "./welch.ts";
export * from "./paired.ts";
export * from "./bootstrap.ts";
