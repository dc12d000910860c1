import { fireEvent, render, screen, within } from "@testing-library/react";
import { EntitiesPanel } from "./EntitiesPanel";
import { entities } from "./fixtures";

describe("EntitiesPanel", () => {
  it("shows volume and sentiment shares per entity, with labelled change arrows", () => {
    render(<EntitiesPanel entities={entities} />);
    const table = screen.getByRole("table", { name: "Sentiment by entity" });
    const rows = within(table).getAllByTestId("entity-row");
    expect(rows).toHaveLength(2);
    const pixel = rows[0];
    expect(within(pixel).getByRole("rowheader").textContent).toBe("Pixel 9");
    const cells = within(pixel).getAllByRole("cell");
    expect(cells[0].textContent).toContain("120");
    expect(within(pixel).getByRole("img", { name: "volume up 20%" }).textContent).toBe("▲ 20%");
    expect(within(pixel).getByRole("img", { name: "negative share up 45 points" }).textContent).toBe("▲ 45");
    expect(within(pixel).getByRole("img", { name: "positive share down 32 points" }).textContent).toBe("▼ 32");
    expect(within(pixel).getByRole("img", { name: "neutral share down 13 points" })).toBeTruthy();
    // Shares of the window: 10, 20 and 90 of 120 posts.
    expect(cells.map((c) => c.textContent?.split(" ")[0])).toEqual(["120", "", "8%", "17%", "75%"]);
    // More negative is bad news, less positive too.
    expect(within(pixel).getByRole("img", { name: "negative share up 45 points" }).className).toContain("bad");
    expect(within(pixel).getByRole("img", { name: "positive share down 32 points" }).className).toContain("bad");
  });

  it("says there is nothing to compare with when the baseline had no posts", () => {
    render(<EntitiesPanel entities={entities} />);
    const launch = screen.getAllByTestId("entity-row")[1];
    expect(within(launch).getByText("hashtag")).toBeTruthy();
    expect(within(launch).getByRole("img", { name: "volume: no baseline to compare" }).textContent).toBe("new");
    expect(within(launch).getByRole("img", { name: "negative share: no baseline to compare" })).toBeTruthy();
  });

  it("calls an unchanged share unchanged", () => {
    const row = { ...entities.entities[0], change: { posts: 0, positive: 0.001, neutral: -0.002, negative: 0 } };
    render(<EntitiesPanel entities={{ ...entities, entities: [row] }} />);
    expect(screen.getByRole("img", { name: "volume unchanged" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "neutral share unchanged" }).textContent).toBe("±0");
  });

  it("filters the posts by an entity's name", () => {
    const onTerm = vi.fn();
    const { rerender } = render(<EntitiesPanel entities={entities} onTerm={onTerm} />);
    fireEvent.click(screen.getByRole("button", { name: "Filter posts by “Pixel 9”" }));
    expect(onTerm).toHaveBeenLastCalledWith("Pixel 9");
    rerender(<EntitiesPanel entities={entities} onTerm={onTerm} activeTerm="pixel 9" />);
    fireEvent.click(screen.getByRole("button", { name: "Stop filtering posts by “Pixel 9”" }));
    expect(onTerm).toHaveBeenLastCalledWith("");
  });

  it("has loading, empty and error states", () => {
    const { rerender } = render(<EntitiesPanel entities={null} />);
    expect(screen.getByRole("status").textContent).toContain("Loading the entities");
    rerender(<EntitiesPanel entities={{ ...entities, entities: [] }} />);
    expect(screen.getByRole("status").textContent).toContain("No products or hashtags");
    rerender(<EntitiesPanel entities={null} error="boom" />);
    expect(screen.getByRole("alert").textContent).toContain("boom");
  });
});
