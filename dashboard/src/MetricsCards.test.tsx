import { render, screen } from "@testing-library/react";
import { MetricsCards } from "./MetricsCards";

describe("MetricsCards", () => {
  it("shows a loading state until data arrives", () => {
    render(<MetricsCards distribution={null} />);
    expect(screen.getByRole("status").textContent).toContain("Loading");
  });

  it("shows an error when the distribution cannot be loaded", () => {
    render(<MetricsCards distribution={null} error="the gateway cannot be reached" />);
    expect(screen.getByRole("alert").textContent).toContain("the gateway cannot be reached");
  });

  it("shows counts and shares, zero for labels without posts", () => {
    render(
      <MetricsCards
        distribution={{
          total: 1210,
          sentiment: [
            { label: "positive", count: 726, percentage: 60 },
            { label: "negative", count: 484, percentage: 40 },
          ],
          emotion: [],
        }}
      />,
    );
    expect(screen.getByRole("region", { name: "Sentiment metrics" })).toBeTruthy();
    expect(screen.getByTestId("metric-total").textContent).toBe("1,210");
    expect(screen.getByTestId("metric-positive").textContent).toBe("726");
    expect(screen.getByTestId("metric-neutral").textContent).toBe("0");
    expect(screen.getByTestId("share-neutral").textContent).toBe("0.0%");
    expect(screen.getByTestId("share-negative").textContent).toBe("40.0%");
  });
});
