export function NotFound({ what, detail }: { what: string; detail?: string }) {
  return (
    <div class="not-found">
      <h1>Not found</h1>
      <p>
        This {what} does not exist, or belongs to another team. {detail}
      </p>
      <p>
        <a href="/ui/jobs">Back to jobs</a>
      </p>
    </div>
  );
}
