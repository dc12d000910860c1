import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { toQuery } from "./api";
import { Controls } from "./Controls";
import { DEFAULT_FILTERS, type DashboardFilters, toPostFilters } from "./range";

const NOW = Date.parse("2026-11-28T21:00:00Z");

function setup(value: DashboardFilters = DEFAULT_FILTERS) {
  const onChange = vi.fn<(next: DashboardFilters) => void>();
  render(<Controls value={value} onChange={onChange} searchDelayMs={10} />);
  return onChange;
}

const queryOf = (f: DashboardFilters) => toQuery(toPostFilters(f, NOW));

describe("Controls", () => {
  it("has a labelled control for each filter", () => {
    setup();
    for (const name of ["Time range", "Source", "Sentiment", "Search posts"]) {
      expect(screen.getByLabelText(name)).toBeTruthy();
    }
  });

  it("calls back with the source and sentiment chosen, as the right query", () => {
    const onChange = setup();
    fireEvent.change(screen.getByLabelText("Source"), { target: { value: "reddit" } });
    expect(onChange).toHaveBeenLastCalledWith({ ...DEFAULT_FILTERS, source: "reddit" });
    expect(queryOf(onChange.mock.lastCall![0])).toBe("source=reddit&from=2026-11-28T20%3A00%3A00.000Z");
    fireEvent.change(screen.getByLabelText("Sentiment"), { target: { value: "negative" } });
    expect(queryOf(onChange.mock.lastCall![0])).toBe("sentiment=negative&from=2026-11-28T20%3A00%3A00.000Z");
  });

  it("changes the time range", () => {
    const onChange = setup();
    fireEvent.change(screen.getByLabelText("Time range"), { target: { value: "15m" } });
    expect(queryOf(onChange.mock.lastCall![0])).toBe("from=2026-11-28T20%3A45%3A00.000Z");
    fireEvent.change(screen.getByLabelText("Time range"), { target: { value: "custom" } });
    expect(onChange.mock.lastCall![0].range).toBe("custom");
    expect(onChange.mock.lastCall![0].customFrom).toBeTruthy();
  });

  it("shows from/to inputs for a custom range and flags an inverted one", () => {
    const onChange = setup({ ...DEFAULT_FILTERS, range: "custom", customFrom: "2026-11-28T20:00:00.000Z", customTo: "2026-11-28T19:00:00.000Z" });
    expect(screen.getByRole("alert").textContent).toContain("before");
    fireEvent.change(screen.getByLabelText("To"), { target: { value: "2026-11-29T10:30" } });
    const next = onChange.mock.lastCall![0];
    expect(next.customTo).toBe(new Date("2026-11-29T10:30").toISOString());
    expect(queryOf(next)).toBe(`from=2026-11-28T20%3A00%3A00.000Z&to=${encodeURIComponent(next.customTo!)}`);
  });

  it("commits the search text once typing pauses", async () => {
    const onChange = setup();
    fireEvent.change(screen.getByLabelText("Search posts"), { target: { value: "battery" } });
    expect(onChange).not.toHaveBeenCalled();
    await waitFor(() => expect(onChange).toHaveBeenCalledWith({ ...DEFAULT_FILTERS, search: "battery" }));
    expect(queryOf(onChange.mock.lastCall![0])).toBe("search=battery&from=2026-11-28T20%3A00%3A00.000Z");
  });

  it("shows a search set from elsewhere (a driver's term), and its removal", () => {
    const onChange = vi.fn();
    const { rerender } = render(<Controls value={DEFAULT_FILTERS} onChange={onChange} searchDelayMs={10} />);
    const box = screen.getByLabelText("Search posts") as HTMLInputElement;
    rerender(<Controls value={{ ...DEFAULT_FILTERS, search: "battery drains" }} onChange={onChange} searchDelayMs={10} />);
    expect(box.value).toBe("battery drains");
    rerender(<Controls value={DEFAULT_FILTERS} onChange={onChange} searchDelayMs={10} />);
    expect(box.value).toBe("");
    expect(onChange).not.toHaveBeenCalled();
  });
});
