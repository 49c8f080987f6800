/**
 * The paper's Figure 2 as inline SVG: one panel per data source, the
 * environment's walls in grey, its goal as a star, each trajectory as a line
 * from a marked start. Plain SVG, so the page needs no script to show it.
 *
 * @module
 */
import type { PlanFigure, PlanPanel } from "./quality.ts";

const panelSize = 220;
const margin = 8;
const pathColours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

function escapeText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** The map's bounds, from its walls (and the goal), so every panel shares one scale. */
function bounds(figure: PlanFigure): [number, number, number, number] {
  let [xMin, yMin, xMax, yMax] = [figure.planView.goal[0], figure.planView.goal[1], 0, 0];
  xMax = xMin;
  yMax = yMin;
  for (const [x0, y0, x1, y1] of figure.planView.walls) {
    xMin = Math.min(xMin, x0);
    yMin = Math.min(yMin, y0);
    xMax = Math.max(xMax, x1);
    yMax = Math.max(yMax, y1);
  }
  return [xMin, yMin, xMax, yMax];
}

function panel(figure: PlanFigure, content: PlanPanel, index: number): string {
  const [xMin, yMin, xMax, yMax] = bounds(figure);
  const scale = (panelSize - 2 * margin) / Math.max(xMax - xMin, yMax - yMin, 1e-9);
  // The observation's first entry runs down the page and the second across, as D4RL draws mazes.
  const px = (_x: number, y: number) => margin + (y - yMin) * scale;
  const py = (x: number, _y: number) => margin + (x - xMin) * scale;
  const clamp = (value: number) => Math.max(0, Math.min(panelSize, value));
  const walls = figure.planView.walls.map(([x0, y0, x1, y1]) =>
    `<rect x="${px(x0, y0).toFixed(1)}" y="${py(x0, y0).toFixed(1)}" width="${
      ((y1 - y0) * scale).toFixed(1)
    }" height="${((x1 - x0) * scale).toFixed(1)}" fill="#bbb"/>`
  ).join("");
  const paths = content.paths.map((path, i) => {
    const colour = pathColours[i % pathColours.length];
    const points = path.map(([x, y]) =>
      `${clamp(px(x, y)).toFixed(1)},${clamp(py(x, y)).toFixed(1)}`
    )
      .join(" ");
    const [sx, sy] = path[0];
    return `<polyline class="trajectory" points="${points}" fill="none" stroke="${colour}" stroke-width="1.5"/>` +
      `<circle class="start" cx="${clamp(px(sx, sy)).toFixed(1)}" cy="${
        clamp(py(sx, sy)).toFixed(1)
      }" r="3" fill="${colour}"/>`;
  }).join("");
  const [gx, gy] = figure.planView.goal;
  const goal = `<text class="goal" x="${px(gx, gy).toFixed(1)}" y="${
    py(gx, gy).toFixed(1)
  }" font-size="18" text-anchor="middle" dominant-baseline="central" fill="#e6a100">★</text>`;
  return `<figure class="plan-panel" data-source="${
    escapeText(content.source)
  }" data-paths="${content.paths.length}"><svg id="plan-${
    escapeText(figure.dataset)
  }-${index}" width="${panelSize}" height="${panelSize}" viewBox="0 0 ${panelSize} ${panelSize}" role="img" aria-label="${
    escapeText(`${content.source} trajectories on ${figure.dataset}`)
  }"><rect width="${panelSize}" height="${panelSize}" fill="#fafafa"/>${walls}${paths}${goal}</svg><figcaption>${
    escapeText(content.source)
  }</figcaption></figure>`;
}

/** One figure: its panels side by side under a heading naming the dataset. */
export function renderPlanFigure(figure: PlanFigure): string {
  return `<div class="plan-figure" id="figure2-${escapeText(figure.dataset)}"><h3>${
    escapeText(figure.dataset)
  }: trajectories (Figure 2)</h3><div class="plan-panels">${
    figure.panels.map((content, i) => panel(figure, content, i)).join("")
  }</div></div>`;
}
