/**
 * Statistics over seeds for the reports: mean ± standard error, Welch's
 * t-test, and the interquartile mean with stratified bootstrap intervals.
 *
 * @module
 */
export * from "./summary.ts";
export * from "./welch.ts";
export * from "./bootstrap.ts";
