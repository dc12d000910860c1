import { render, screen } from "@testing-library/react";
import { MetricsCards } from "./MetricsCards";

describe("MetricsCards", () => {
  it("shows a loading state until data arrives", () => {
    render(<MetricsCards distribution={null} />);
    expect(screen.getByRole("status").textContent).toContain("Loading");
  });

  it("shows counts and shares, zero for labels without posts", () => {
    render(
      <MetricsCards
        distribution={{
          total: 10,
          sentiment: [
            { label: "positive", count: 6, percentage: 60 },
            { label: "negative", count: 4, percentage: 40 },
          ],
          emotion: [],
        }}
      />,
    );
    expect(screen.getByTestId("metric-total").textContent).toBe("10");
    expect(screen.getByTestId("metric-positive").textContent).toBe("6");
    expect(screen.getByTestId("metric-neutral").textContent).toBe("0");
    expect(screen.getByText("40.0%")).toBeTruthy();
  });
});
