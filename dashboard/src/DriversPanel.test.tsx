import { fireEvent, render, screen, within } from "@testing-library/react";
import type { Sentiment } from "./api";
import { DriversPanel } from "./DriversPanel";
import { drivers } from "./fixtures";

function setup(props: Partial<React.ComponentProps<typeof DriversPanel>> = {}) {
  const onTerm = vi.fn<(term: string) => void>();
  const onSentiment = vi.fn<(s: Sentiment) => void>();
  render(<DriversPanel drivers={drivers} sentiment="negative" onSentiment={onSentiment} activeTerm="" onTerm={onTerm} {...props} />);
  return { onTerm, onSentiment };
}

describe("DriversPanel", () => {
  it("lists each driver with its kind, counts now and before, share change and an example", () => {
    setup();
    expect(screen.getByRole("heading", { name: "What’s driving it" })).toBeTruthy();
    const items = within(screen.getByRole("list", { name: "Drivers of negative posts" })).getAllByTestId("driver");
    expect(items).toHaveLength(2);
    const first = items[0];
    expect(within(first).getByText("battery drains")).toBeTruthy();
    expect(within(first).getByText("phrase")).toBeTruthy();
    expect(first.textContent).toContain("60 posts now · 2 before");
    expect(first.textContent).toContain("14.3% of negative posts, up 14 points from 0.5%");
    expect(within(first).getByText("My battery drains in two hours since the update")).toBeTruthy();
    expect(first.textContent).toContain("annoyed_owner, reddit");
    // Entities read as products; a driver without examples shows none.
    expect(within(items[1]).getByText("product")).toBeTruthy();
    expect(items[1].querySelector("blockquote")).toBeNull();
    expect(screen.getByTestId("drivers-summary").textContent).toBe(
      "420 negative posts in this range against 380 in the 1 h before · 310 terms tested",
    );
  });

  it("filters the posts by a driver's term when it is clicked, and clears the filter", () => {
    const { onTerm } = setup();
    const button = screen.getByRole("button", { name: "Filter posts by “battery drains”" });
    expect(button.getAttribute("aria-pressed")).toBe("false");
    expect(screen.getByRole("button", { name: "Filter posts by “battery drains”", description: /60 posts now/ })).toBe(button);
    fireEvent.click(button);
    expect(onTerm).toHaveBeenLastCalledWith("battery drains");
    fireEvent.click(screen.getByRole("button", { name: "Filter posts by “Pixel 9”" }));
    expect(onTerm).toHaveBeenLastCalledWith("Pixel 9");
  });

  it("marks the active term, and offers to remove it", () => {
    const { onTerm } = setup({ activeTerm: "PIXEL 9" });
    const active = screen.getByRole("button", { name: "Stop filtering posts by “Pixel 9”" });
    expect(active.getAttribute("aria-pressed")).toBe("true");
    fireEvent.click(active);
    expect(onTerm).toHaveBeenLastCalledWith("");
    expect(screen.getByText("PIXEL 9").tagName).toBe("MARK");
    fireEvent.click(screen.getByRole("button", { name: "Clear the filter by “PIXEL 9”" }));
    expect(onTerm).toHaveBeenCalledTimes(2);
    expect(onTerm).toHaveBeenLastCalledWith("");
  });

  it("says plainly when nothing stands out, without a list", () => {
    setup({ drivers: { ...drivers, drivers: [] } });
    expect(screen.getByRole("status").textContent).toContain("Nothing stands out against the baseline");
    expect(screen.queryByRole("list")).toBeNull();
  });

  it("says so when the range has no posts of that sentiment", () => {
    setup({ drivers: { ...drivers, posts: 0, drivers: [] } });
    expect(screen.getByRole("status").textContent).toBe("No negative posts in this range.");
  });

  it("switches between negative and positive", () => {
    const { onSentiment } = setup();
    const group = screen.getByRole("group", { name: "Sentiment to explain" });
    const negative = within(group).getByRole("button", { name: "negative" });
    const positive = within(group).getByRole("button", { name: "positive" });
    expect(negative.getAttribute("aria-pressed")).toBe("true");
    expect(positive.getAttribute("aria-pressed")).toBe("false");
    fireEvent.click(positive);
    expect(onSentiment).toHaveBeenCalledWith("positive");
  });

  it("does not show one sentiment's drivers under the other while they reload", () => {
    setup({ sentiment: "positive", loading: true });
    expect(screen.getByRole("status").textContent).toContain("Loading the drivers");
    expect(screen.queryByText("battery drains")).toBeNull();
  });

  it("has loading and error states", () => {
    setup({ drivers: null, error: "503 Service Unavailable" });
    expect(screen.getByRole("alert").textContent).toContain("Cannot load the drivers: 503");
  });
});
