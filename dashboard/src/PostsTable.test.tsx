import { fireEvent, render, screen } from "@testing-library/react";
import { post } from "./fixtures";
import { PostsTable } from "./PostsTable";

const page = (offset: number, total: number, totalIsLowerBound = false) => ({
  posts: Array.from({ length: Math.min(20, total - offset) }, (_, i) => post(offset + i)),
  total,
  totalIsLowerBound,
  limit: 20,
  offset,
});

describe("PostsTable", () => {
  it("shows a page of rows and moves between pages", () => {
    const onPage = vi.fn();
    const { rerender } = render(<PostsTable page={page(0, 45)} onPage={onPage} exportHref="/api/posts/export.csv?source=reddit" />);
    expect(screen.getAllByTestId("posts-row")).toHaveLength(20);
    expect(screen.getByTestId("page-info").textContent).toBe("Page 1 of 3 · 45 posts");
    expect((screen.getByRole("button", { name: "Previous" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(onPage).toHaveBeenLastCalledWith(20);

    rerender(<PostsTable page={page(40, 45)} onPage={onPage} exportHref="/x" />);
    expect(screen.getAllByTestId("posts-row")).toHaveLength(5);
    expect(screen.getByTestId("page-info").textContent).toBe("Page 3 of 3 · 45 posts");
    expect((screen.getByRole("button", { name: "Next" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Previous" }));
    expect(onPage).toHaveBeenLastCalledWith(20);
  });

  it("says when a search's total is a lower bound", () => {
    render(<PostsTable page={page(0, 10000, true)} onPage={() => {}} exportHref="/x" />);
    expect(screen.getByTestId("page-info").textContent).toBe("Page 1 of 500+ · 10,000+ posts");
  });

  it("links the CSV export of the current filter", () => {
    render(<PostsTable page={page(0, 1)} onPage={() => {}} exportHref="/api/posts/export.csv?source=reddit" />);
    expect(screen.getByRole("link", { name: "Export CSV" }).getAttribute("href")).toBe("/api/posts/export.csv?source=reddit");
  });

  it("has loading, empty and error states", () => {
    const { rerender } = render(<PostsTable page={null} onPage={() => {}} exportHref="/x" />);
    expect(screen.getByRole("status").textContent).toContain("Loading posts");
    rerender(<PostsTable page={{ posts: [], total: 0, totalIsLowerBound: false, limit: 20, offset: 0 }} onPage={() => {}} exportHref="/x" />);
    expect(screen.getByRole("status").textContent).toContain("No posts match");
    rerender(<PostsTable page={null} error="bad" onPage={() => {}} exportHref="/x" />);
    expect(screen.getByRole("alert").textContent).toContain("bad");
  });
});
