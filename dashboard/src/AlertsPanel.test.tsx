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
});
