import { SENTIMENT_GLYPHS, emotionColor, sentimentColor, textOn } from "./palette";

/** A sentiment label with its colour and shape (▲ ● ▼), readable without colour. */
export function SentimentBadge({ label }: { label: string | null }) {
  const name = label ?? "pending";
  const background = sentimentColor(label);
  return (
    <span className={`badge sentiment ${name}`} style={{ background, color: textOn(background) }}>
      <span aria-hidden="true">{SENTIMENT_GLYPHS[name] ?? "○"} </span>
      {name}
    </span>
  );
}

/** An emotion label in its colour. */
export function EmotionBadge({ label }: { label: string | null }) {
  if (!label) return null;
  const background = emotionColor(label);
  return (
    <span className={`badge emotion ${label}`} style={{ background, color: textOn(background) }}>
      {label}
    </span>
  );
}
