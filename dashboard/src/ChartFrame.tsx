import { cloneElement, type ReactElement } from "react";
import { ResponsiveContainer } from "recharts";

interface Props {
  height: number;
  /** A fixed width instead of the container's (for tests, where nothing has a size). */
  width?: number;
  children: ReactElement<{ width?: number; height?: number }>;
}

/** A Recharts chart as wide as its container, or `width` when given. */
export function ChartFrame({ height, width, children }: Props) {
  if (width !== undefined) return cloneElement(children, { width, height });
  return (
    <ResponsiveContainer width="100%" height={height} minWidth={0}>
      {children}
    </ResponsiveContainer>
  );
}
