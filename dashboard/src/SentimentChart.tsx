import { Area, AreaChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from "recharts";
import { ChartFrame } from "./ChartFrame";
import type { AggregateBucket, BucketWidth } from "./api";
import { SENTIMENT_COLORS } from "./palette";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

interface Props {
  buckets: AggregateBucket[] | null;
  bucket: BucketWidth;
  error?: string | null;
  /** A fixed chart width instead of the container's (for tests). */
  fixedWidth?: number;
}

function tick(bucket: BucketWidth) {
  return (iso: string) => {
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return "";
    return bucket === "day"
      ? t.toLocaleDateString(undefined, { month: "short", day: "numeric" })
      : bucket === "hour"
        ? t.toLocaleString(undefined, { day: "numeric", hour: "2-digit", minute: "2-digit" })
        : t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  };
}

const SERIES = ["positive", "neutral", "negative"] as const;

/** Posts per bucket, stacked by sentiment, from /api/sentiment/aggregate. */
export function SentimentChart({ buckets, bucket, error = null, fixedWidth }: Props) {
  if (!buckets) {
    return error ? <ErrorMessage what="sentiment over time" message={error} /> : <Loading what="sentiment over time" />;
  }
  const total = buckets.reduce((sum, b) => sum + b.total, 0);
  const caption = `Sentiment over time, posts per ${bucket}`;
  if (buckets.length === 0 || total === 0) {
    return (
      <figure className="chart timeline" aria-label={caption}>
        <figcaption>{caption}</figcaption>
        <Empty>No posts in this range yet.</Empty>
      </figure>
    );
  }
  const format = tick(bucket);
  // Room for the widest tick label ("1,200" needs more than "300"): about 8 px a character.
  const widest = Math.max(...buckets.map((b) => b.total)).toLocaleString().length;
  const axisWidth = Math.max(40, 16 + 8 * widest);
  return (
    <figure className="chart timeline" aria-label={caption}>
      <figcaption data-testid="timeline-caption">{caption}</figcaption>
      <div className="chart-box" role="img" aria-label={`${total} posts in ${buckets.length} ${bucket} buckets`}>
        <ChartFrame height={260} width={fixedWidth}>
          <AreaChart data={buckets} margin={{ top: 8, right: 16, left: 0, bottom: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#d0d4da" />
            <XAxis dataKey="start" tickFormatter={format} minTickGap={24} />
            <YAxis allowDecimals={false} width={axisWidth} />
            <Tooltip labelFormatter={(label) => format(String(label))} />
            <Legend />
            {SERIES.map((s, i) => (
              <Area
                key={s}
                type="monotone"
                dataKey={s}
                name={s}
                stackId="sentiment"
                stroke={SENTIMENT_COLORS[s]}
                fill={SENTIMENT_COLORS[s]}
                fillOpacity={0.55}
                strokeDasharray={i === 1 ? "4 2" : undefined}
                isAnimationActive={false}
              />
            ))}
          </AreaChart>
        </ChartFrame>
      </div>
    </figure>
  );
}
