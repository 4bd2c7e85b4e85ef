/// <reference lib="dom" />
/**
 * @module viewer/vlist
 * A virtual list: a scrolling box of fixed-height rows that creates DOM only for the rows in view, so
 * that a tree of thousands of regions scrolls as fast as one of ten.
 */

/** Draws row `index` into `el` (an empty div, reused between rows). */
export type RowRenderer = (el: HTMLDivElement, index: number) => void;

/** A scrolling list of `count` rows of `rowHeight` pixels inside `host`. */
export class VirtualList {
  private readonly spacer: HTMLDivElement;
  private readonly pool: HTMLDivElement[] = [];
  private count = 0;
  private frame = 0;

  constructor(
    private readonly host: HTMLElement,
    private readonly rowHeight: number,
    private readonly render: RowRenderer,
  ) {
    host.classList.add('vlist');
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    host.append(this.spacer);
    host.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(host);
  }

  /** Sets the number of rows and redraws. */
  setCount(count: number): void {
    this.count = count;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    this.draw();
  }

  /** Redraws the visible rows (after their data changed). */
  refresh(): void {
    this.draw();
  }

  /** Scrolls so that row `index` is visible (centred if it was far away). */
  reveal(index: number): void {
    const top = index * this.rowHeight;
    const h = this.host.clientHeight;
    if (top < this.host.scrollTop || top + this.rowHeight > this.host.scrollTop + h) {
      this.host.scrollTop = Math.max(0, top - h / 2);
    }
    this.draw();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const h = this.host.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.host.scrollTop / this.rowHeight) - 5);
    const last = Math.min(this.count, Math.ceil((this.host.scrollTop + h) / this.rowHeight) + 5);
    const needed = Math.max(0, last - first);
    while (this.pool.length < needed) {
      const el = document.createElement('div');
      el.className = 'vlist-row';
      el.style.height = `${this.rowHeight}px`;
      this.host.append(el);
      this.pool.push(el);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const el = this.pool[k]!;
      const i = first + k;
      if (k >= needed) {
        if (el.style.display !== 'none') {
          el.style.display = 'none';
          el.replaceChildren();
          el.className = 'vlist-row';
        }
        continue;
      }
      el.style.display = '';
      el.style.transform = `translateY(${i * this.rowHeight}px)`;
      el.dataset.index = String(i);
      el.replaceChildren();
      el.className = 'vlist-row';
      this.render(el, i);
    }
  }
}
