import { fireEvent, render, screen, within } from "@testing-library/react";
import { AlertBanner } from "./AlertBanner";
import { AlertsPanel } from "./AlertsPanel";
import { alert } from "./fixtures";

describe("AlertsPanel", () => {
  it("lists recent alerts, newest first, bounded", () => {
    const alerts = Array.from({ length: 30 }, (_, i) => alert(30 - i));
    render(<AlertsPanel alerts={alerts} max={20} />);
    const items = within(screen.getByRole("list", { name: "Recent alerts" })).getAllByRole("listitem");
    expect(items).toHaveLength(20);
    expect(items[0].textContent).toContain("negative spike: 0.72 (threshold 0.50) over 40 posts");
  });

  it("names the drivers of an alert, and reads older alerts without them as before", () => {
    const drivers = [
      { term: "Pixel 9", kind: "entity", score: 5.1, count: 40, baseline_count: 3, share: 0.2, baseline_share: 0.02 },
      { term: "battery drains", kind: "phrase", score: 4.2, count: 12, baseline_count: 0, share: 0.06, baseline_share: 0 },
      { term: "overheating", kind: "word", score: 4, count: 9, baseline_count: 1, share: 0.05, baseline_share: 0.01 },
    ];
    render(<AlertsPanel alerts={[alert(2, { details: { drivers } }), alert(1, { details: { window_minutes: 5 } })]} />);
    const items = within(screen.getByRole("list", { name: "Recent alerts" })).getAllByRole("listitem");
    expect(items[0].textContent).toContain("over 40 posts — driven by Pixel 9, battery drains, overheating");
    expect(items[1].textContent).toMatch(/over 40 posts$/);
  });

  it("has empty, loading and error states", () => {
    const { rerender } = render(<AlertsPanel alerts={[]} />);
    expect(screen.getByRole("status").textContent).toContain("No alerts");
    rerender(<AlertsPanel alerts={null} />);
    expect(screen.getByRole("status").textContent).toContain("Loading alerts");
    rerender(<AlertsPanel alerts={null} error="503" />);
    expect(screen.getByRole("alert").textContent).toContain("503");
  });
});

describe("AlertBanner", () => {
  it("shows nothing without a live alert", () => {
    const { container } = render(<AlertBanner alert={null} onDismiss={() => {}} />);
    expect(container.innerHTML).toBe("");
  });

  it("announces a new alert and can be dismissed", () => {
    const onDismiss = vi.fn();
    render(<AlertBanner alert={alert(3, { alert_type: "volume_drop", actual_value: 2, threshold_value: 10 })} onDismiss={onDismiss} />);
    const banner = screen.getByRole("alert");
    expect(banner.textContent).toContain("New alert");
    expect(banner.textContent).toContain("volume drop: 2.00 (threshold 10.00)");
    fireEvent.click(screen.getByRole("button", { name: "Dismiss alert" }));
    expect(onDismiss).toHaveBeenCalledTimes(1);
  });

  it("names what drove the alert", () => {
    const details = { drivers: [{ term: "Pixel 9", kind: "entity" }, { term: "#recall", kind: "hashtag" }] };
    render(<AlertBanner alert={alert(4, { details })} onDismiss={() => {}} />);
    expect(screen.getByRole("alert").textContent).toContain("negative spike: 0.72 (threshold 0.50) over 40 posts — driven by Pixel 9, #recall");
  });

  it("reads an alert whose drivers are empty as before", () => {
    render(<AlertBanner alert={alert(5, { details: { drivers: [] } })} onDismiss={() => {}} />);
    expect(screen.getByRole("alert").textContent).not.toContain("driven by");
  });
});
