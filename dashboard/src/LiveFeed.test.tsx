import { render, screen, within } from "@testing-library/react";
import { post } from "./fixtures";
import { LiveFeed } from "./LiveFeed";
import { mergePosts } from "./useLiveFeed";

describe("LiveFeed", () => {
  it("waits for posts when there are none", () => {
    render(<LiveFeed posts={[]} />);
    expect(screen.getByRole("status").textContent).toContain("Waiting for posts");
  });

  it("says which term it waits for when the feed is filtered", () => {
    render(<LiveFeed posts={[]} term="battery drains" />);
    expect(screen.getByRole("status").textContent).toBe("Waiting for posts mentioning “battery drains”…");
  });

  it("shows sentiment and emotion badges, confidence, source and time", () => {
    render(<LiveFeed posts={[post(1, { sentiment_label: "negative", emotion: "anger", confidence_score: 0.876, source: "reddit" })]} />);
    const item = within(screen.getByRole("list", { name: "Live feed" })).getByRole("listitem");
    expect(item.querySelector(".badge.sentiment")?.textContent).toBe("▼ negative");
    expect(item.querySelector(".badge.emotion")?.textContent).toBe("anger");
    expect(within(item).getByText("88%")).toBeTruthy();
    expect(within(item).getByText("reddit")).toBeTruthy();
    expect(item.querySelector("time")?.textContent).not.toBe("–");
  });

  it("never shows more than its maximum", () => {
    const many = Array.from({ length: 80 }, (_, i) => post(i));
    render(<LiveFeed posts={many} max={50} />);
    expect(screen.getAllByTestId("feed-post")).toHaveLength(50);
  });

  it("merges posts newest first, without duplicates, bounded", () => {
    const current = [post(3), post(2), post(1)];
    const merged = mergePosts(current, [post(5), post(2), post(4)], 4);
    expect(merged.map((p) => p.post_id)).toEqual(["p5", "p4", "p3", "p2"]);
  });
});
