// One database: its tabs (tables, SQL, insights, Time Travel).
import { href } from '../route.ts';
import { useSession } from '../session.ts';
import { InsightsTab } from './insights.tsx';
import { SqlTab } from './sql.tsx';
import { TablesTab } from './tables.tsx';
import { TimeTravelTab } from './time-travel.tsx';

const TABS = [
  ['tables', 'Tables'],
  ['sql', 'SQL console'],
  ['insights', 'Query insights'],
  ['time-travel', 'Time Travel'],
] as const;

export function DatabasePage({ name, tab, rest }: { name: string; tab: string; rest: string[] }) {
  const { who } = useSession();
  const tabs = TABS.filter(([id]) => id !== 'time-travel' || who.history);
  return (
    <section aria-labelledby="database-title">
      <p class="crumbs">
        <a href={href()}>Databases</a> /
      </p>
      <h1 id="database-title">{name}</h1>
      <nav class="tabs" aria-label="Database">
        {tabs.map(([id, label]) => (
          <a key={id} href={href('db', name, id)} aria-current={tab === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'sql' ? (
        <SqlTab database={name} />
      ) : tab === 'insights' ? (
        <InsightsTab database={name} />
      ) : tab === 'time-travel' ? (
        <TimeTravelTab database={name} />
      ) : (
        <TablesTab database={name} table={rest[0]} />
      )}
    </section>
  );
}
