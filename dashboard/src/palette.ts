// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. Every use of a
// colour also carries a text label (and sentiment a glyph), so colour is never the only cue.

export const OKABE_ITO = {
  orange: "#e69f00",
  skyBlue: "#56b4e9",
  bluishGreen: "#009e73",
  yellow: "#f0e442",
  blue: "#0072b2",
  vermillion: "#d55e00",
  reddishPurple: "#cc79a7",
  black: "#000000",
  grey: "#999999",
} as const;

export const SENTIMENT_COLORS: Record<string, string> = {
  positive: OKABE_ITO.bluishGreen,
  neutral: OKABE_ITO.blue,
  negative: OKABE_ITO.vermillion,
};

/** A shape per sentiment, so badges read without colour. */
export const SENTIMENT_GLYPHS: Record<string, string> = { positive: "▲", neutral: "●", negative: "▼" };

const EMOTION_COLORS: Record<string, string> = {
  joy: OKABE_ITO.orange,
  happiness: OKABE_ITO.orange,
  love: OKABE_ITO.reddishPurple,
  surprise: OKABE_ITO.yellow,
  sadness: OKABE_ITO.blue,
  fear: OKABE_ITO.skyBlue,
  anger: OKABE_ITO.vermillion,
  disgust: OKABE_ITO.bluishGreen,
  neutral: OKABE_ITO.grey,
  optimism: OKABE_ITO.bluishGreen,
};

const CYCLE = [
  OKABE_ITO.orange,
  OKABE_ITO.skyBlue,
  OKABE_ITO.bluishGreen,
  OKABE_ITO.yellow,
  OKABE_ITO.blue,
  OKABE_ITO.vermillion,
  OKABE_ITO.reddishPurple,
];

export function sentimentColor(label: string | null | undefined): string {
  return (label && SENTIMENT_COLORS[label]) || OKABE_ITO.grey;
}

export function emotionColor(label: string | null | undefined, index = 0): string {
  if (label && EMOTION_COLORS[label]) return EMOTION_COLORS[label];
  return CYCLE[index % CYCLE.length];
}

/** Black or white, whichever reads better on `hex` (WCAG relative luminance). */
export function textOn(hex: string): "#000000" | "#ffffff" {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000000" : "#ffffff";
}
