import { Bar, BarChart, Cell, Pie, PieChart, Tooltip, XAxis, YAxis } from "recharts";
import { ChartFrame } from "./ChartFrame";
import type { Distribution, LabelCount } from "./api";
import { formatCount } from "./format";
import { SENTIMENT_GLYPHS, emotionColor, sentimentColor } from "./palette";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

interface Props {
  distribution: Distribution | null;
  error?: string | null;
  /** A fixed chart width instead of the container's (for tests). */
  fixedWidth?: number;
}

function Legend({ label, items, color }: { label: string; items: LabelCount[]; color: (l: string, i: number) => string }) {
  return (
    <ul className="legend" aria-label={label}>
      {items.map((item, i) => (
        <li key={item.label} data-testid={`${label}-${item.label}`}>
          <span className="swatch" aria-hidden="true" style={{ background: color(item.label, i) }} />
          <span className="legend-label">
            {SENTIMENT_GLYPHS[item.label] && label.startsWith("Sentiment") ? `${SENTIMENT_GLYPHS[item.label]} ` : ""}
            {item.label}
          </span>
          <span className="legend-value">
            {formatCount(item.count)} ({item.percentage.toFixed(1)}%)
          </span>
        </li>
      ))}
    </ul>
  );
}

/** Sentiment shares as a pie, and the emotion breakdown as bars beside it. */
export function DistributionChart({ distribution, error = null, fixedWidth }: Props) {
  if (!distribution) {
    return error ? <ErrorMessage what="the distribution" message={error} /> : <Loading what="the distribution" />;
  }
  const sentiment = distribution.sentiment.filter((c) => c.count > 0);
  const emotion = [...distribution.emotion].filter((c) => c.count > 0).sort((a, b) => b.count - a.count);
  if (distribution.total === 0 || sentiment.length === 0) {
    return <Empty>No posts match this range and these filters yet.</Empty>;
  }
  return (
    <div className="distribution">
      <figure className="chart" aria-label="Sentiment distribution">
        <figcaption>Sentiment</figcaption>
        <div className="chart-box" role="img" aria-label={sentiment.map((s) => `${s.label} ${s.percentage.toFixed(1)}%`).join(", ")}>
          <ChartFrame height={220} width={fixedWidth}>
            <PieChart>
              <Pie data={sentiment} dataKey="count" nameKey="label" innerRadius="45%" outerRadius="80%" isAnimationActive={false}>
                {sentiment.map((s) => (
                  <Cell key={s.label} fill={sentimentColor(s.label)} stroke="#ffffff" />
                ))}
              </Pie>
              <Tooltip formatter={(value) => formatCount(Number(value))} />
            </PieChart>
          </ChartFrame>
        </div>
        <Legend label="Sentiment breakdown" items={sentiment} color={(l) => sentimentColor(l)} />
      </figure>
      <figure className="chart" aria-label="Emotion breakdown">
        <figcaption>Emotion</figcaption>
        {emotion.length === 0 ? (
          <Empty>No emotion analysis for these posts (no emotion model configured).</Empty>
        ) : (
          <>
            <div className="chart-box" role="img" aria-label={emotion.map((s) => `${s.label} ${s.percentage.toFixed(1)}%`).join(", ")}>
              <ChartFrame height={220} width={fixedWidth}>
                <BarChart data={emotion} layout="vertical" margin={{ left: 8, right: 16 }}>
                  <XAxis type="number" allowDecimals={false} />
                  <YAxis type="category" dataKey="label" width={80} />
                  <Tooltip formatter={(value) => formatCount(Number(value))} />
                  <Bar dataKey="count" isAnimationActive={false}>
                    {emotion.map((e, i) => (
                      <Cell key={e.label} fill={emotionColor(e.label, i)} />
                    ))}
                  </Bar>
                </BarChart>
              </ChartFrame>
            </div>
            <Legend label="Emotion counts" items={emotion} color={emotionColor} />
          </>
        )}
      </figure>
    </div>
  );
}
