import { render, screen, within } from "@testing-library/react";
import { DistributionChart } from "./DistributionChart";
import { distribution } from "./fixtures";

describe("DistributionChart", () => {
  it("renders a slice and a legend entry per sentiment, and the emotion breakdown", () => {
    const { container } = render(<DistributionChart distribution={distribution} fixedWidth={400} />);
    const legend = screen.getByRole("list", { name: "Sentiment breakdown" });
    const items = within(legend).getAllByRole("listitem");
    expect(items.map((li) => li.textContent)).toEqual([
      "▲ positive5 (50.0%)",
      "● neutral3 (30.0%)",
      "▼ negative2 (20.0%)",
    ]);
    expect(container.querySelectorAll(".recharts-pie-sector").length).toBe(3);
    const fills = [...container.querySelectorAll(".recharts-pie-sector path")].map((p) => p.getAttribute("fill"));
    expect(fills).toEqual(["#009e73", "#0072b2", "#d55e00"]);
    const emotions = screen.getByRole("list", { name: "Emotion counts" });
    expect(within(emotions).getByText("joy")).toBeTruthy();
    expect(within(emotions).getByText("4 (40.0%)")).toBeTruthy();
    expect(screen.getByRole("img", { name: "positive 50.0%, neutral 30.0%, negative 20.0%" })).toBeTruthy();
  });

  it("has an empty state when nothing matches", () => {
    render(<DistributionChart distribution={{ total: 0, sentiment: [], emotion: [] }} />);
    expect(screen.getByRole("status").textContent).toContain("No posts match");
  });

  it("says so when there is no emotion analysis", () => {
    render(<DistributionChart distribution={{ ...distribution, emotion: [] }} fixedWidth={400} />);
    expect(screen.getByText(/No emotion analysis/)).toBeTruthy();
  });

  it("has loading and error states", () => {
    const { rerender } = render(<DistributionChart distribution={null} />);
    expect(screen.getByRole("status").textContent).toContain("Loading");
    rerender(<DistributionChart distribution={null} error="boom" />);
    expect(screen.getByRole("alert").textContent).toContain("boom");
  });
});
