/**
 * Progress reports thinned to whole percents, so a long loop of small steps
 * (training, denoising) does not flood the reporter.
 *
 * @module
 */

/** Wraps `report` so it is called only when the whole percent of `fraction` changes. */
export function byWholePercent(report: (fraction: number) => void): (fraction: number) => void {
  let lastPercent = -1;
  return (fraction) => {
    const percent = Math.floor(fraction * 100);
    if (percent !== lastPercent) {
      lastPercent = percent;
      report(fraction);
    }
  };
}
